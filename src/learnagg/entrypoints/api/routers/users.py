"""Routes of the users API family (SPEC §5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["users"])
