"""Routes of the users API family: load, update and read users (docs/api.md#platform-data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.platform import UsersLoad, UserUpdate
from learnagg.entrypoints.api.schemas.platform_results import Success, UserResult, UsersLoadResult
from learnagg.entrypoints.api.validation import Body
from learnagg.services import users

router = APIRouter(tags=["users"], dependencies=SECURED)


@router.post("/v1/user/load", summary="Upsert users (platform admins)", **documented(UsersLoadResult))
def load(ctx: Authed, body: Body[UsersLoad]) -> Response:
    """Full upsert per user; result ``{"count": n}``."""
    r = body.request
    return ctx.ok(users.load_users(ctx.app, ctx.user, [u.record() for u in r.users]))


@router.patch("/v1/user/update", summary="Set some fields of one user (platform admins)", **documented(Success))
def update(ctx: Authed, body: Body[UserUpdate]) -> Response:
    """Sets the given fields only; 404 USER_NOT_FOUND."""
    r = body.request
    return ctx.ok(users.update_user(ctx.app, ctx.user, r.userId, r.given()))


@router.get(
    "/v1/user/read/{userId}", summary="One user (the user themself or a platform admin)", **documented(UserResult)
)
def read(ctx: Authed, userId: str) -> Response:
    """The user's fields as loaded, plus ``displayName``."""
    return ctx.ok(users.read_user(ctx.app, ctx.user, userId))
