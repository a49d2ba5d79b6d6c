"""Routes of the groups API family: create, read, update, membership, list, activities (docs/api.md#platform-data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.domain.platform import read_parts
from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.groups import GroupCreate, GroupList, GroupUpdate, MembershipUpdate
from learnagg.entrypoints.api.schemas.platform_results import (
    GroupActivitiesResult,
    GroupCreateResult,
    GroupListResult,
    GroupResult,
    Success,
)
from learnagg.entrypoints.api.validation import Body
from learnagg.services import groups

router = APIRouter(tags=["groups"], dependencies=SECURED)


@router.post("/v1/group/create", summary="Create a group with the caller as its admin", **documented(GroupCreateResult))
def create(ctx: Authed, body: Body[GroupCreate]) -> Response:
    """Result ``{"groupId"}``."""
    r = body.request
    return ctx.ok(
        groups.create_group(
            ctx.app,
            ctx.user,
            name=r.name,
            description=r.description,
            activities=[a.activity() for a in r.activities or ()],
            members=[m.member() for m in r.members or ()],
            now=ctx.now,
        )
    )


@router.get(
    "/v1/group/read/{groupId}", summary="A group with its active members and activities", **documented(GroupResult)
)
def read(ctx: Authed, groupId: str, fields: str | None = None) -> Response:
    """Active members and platform admins only; ``fields`` picks ``members`` and/or ``activities``; invited
    members are listed to group admins and platform admins only."""
    return ctx.ok(groups.read_group(ctx.app, ctx.user, groupId, read_parts(fields)))


@router.patch(
    "/v1/group/update",
    summary="Update a group's name, members and activities (group admins)",
    **documented(Success),
)
def update(ctx: Authed, body: Body[GroupUpdate]) -> Response:
    """Members add/edit/remove and activities add/remove; result ``{"response": "SUCCESS"}``."""
    r = body.request
    return ctx.ok(groups.update_group(ctx.app, ctx.user, r.groupId, r.changes(), ctx.now))


@router.patch(
    "/v1/group/membership/update", summary="Accept an invitation to a group, or leave it", **documented(Success)
)
def membership_update(ctx: Authed, body: Body[MembershipUpdate]) -> Response:
    """The caller's own membership: ``active`` accepts, ``inactive`` leaves; result ``{"response": "SUCCESS"}``."""
    r = body.request
    return ctx.ok(groups.update_membership(ctx.app, ctx.user, r.groupId, r.status, ctx.now))


@router.post("/v1/group/list", summary="The groups of a user", **documented(GroupListResult))
def group_list(ctx: Authed, body: Body[GroupList]) -> Response:
    """Groups where the user (the caller by default) is an active member, or (``status: invited``) invited."""
    filters = body.request.filters
    user_id = filters.userId if filters else None
    status = filters.status if filters and filters.status else "active"
    return ctx.ok(groups.list_groups(ctx.app, ctx.user, user_id, status))


@router.get("/v1/group/activities/{groupId}", summary="A group's activities", **documented(GroupActivitiesResult))
def activities(ctx: Authed, groupId: str) -> Response:
    """Active members and platform admins only."""
    return ctx.ok(groups.group_activities(ctx.app, ctx.user, groupId))
