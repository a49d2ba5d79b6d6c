"""Routes of the group aggregates API family (SPEC §5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["group aggregates"])
