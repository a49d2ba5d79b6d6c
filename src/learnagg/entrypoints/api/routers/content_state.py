"""Routes of the content state API family (SPEC §5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["content state"])
