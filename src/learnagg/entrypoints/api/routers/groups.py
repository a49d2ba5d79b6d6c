"""Routes of the groups API family (SPEC §5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["groups"])
