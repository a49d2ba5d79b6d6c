"""Routes of the group aggregates API family: `/v1/group/activity/agg` and `/v1/group/agg` (SPEC §5.4, §5.5)."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.results import ActivityAggResult, GroupAggResult
from learnagg.entrypoints.api.validation import Body, Check, RequestModel, each, list_of, required, typed
from learnagg.services import group_aggregates
from learnagg.services.group_aggregates import Activity, ActivityAggQuery, GroupAggQuery

router = APIRouter(tags=["group aggregates"], dependencies=SECURED)


class ActivityAggRequest(RequestModel):
    """``{"groupId", "activityId", "activityType", "includeAllMembers"?}``, checked in SPEC §5.4 order."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        required("activityId", "ACTIVITY_ID_MISSING"),
        required("activityType", "ACTIVITY_TYPE_MISSING"),
        typed("includeAllMembers", bool),
    )

    groupId: str
    activityId: str
    activityType: str
    includeAllMembers: bool | None = None


class GroupAggRequest(RequestModel):
    """``{"groupId", "activities"?: [{"id", "type"}], "fields"?: [string]}``, checked in SPEC §5.5 order."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        each("activities", [required("id", "ACTIVITY_ID_MISSING"), required("type", "ACTIVITY_TYPE_MISSING")]),
        list_of("fields", str),
    )

    groupId: str
    activities: list[dict[str, Any]] | None = None
    fields: list[str] | None = None


@router.post(
    "/v1/group/activity/agg",
    summary="One activity's aggregates for every member of a group",
    **documented(ActivityAggResult),
)
def activity_agg(ctx: Authed, body: Body[ActivityAggRequest]) -> Response:
    """Per-member metrics of one activity and its enrolment count (SPEC §5.4)."""
    r = body.request
    query = ActivityAggQuery(r.groupId, r.activityId, r.activityType, bool(r.includeAllMembers))
    return ctx.ok(group_aggregates.activity_agg(ctx.app.store, ctx.user, query, ctx.now, ctx.app.cache))


@router.post("/v1/group/agg", summary="Summary metrics of a group's activities", **documented(GroupAggResult))
def group_agg(ctx: Authed, body: Body[GroupAggRequest]) -> Response:
    """Enrolment, completion and score statistics per activity (SPEC §5.5)."""
    r = body.request
    ctx.limit("activities", r.activities)
    ctx.limit("fields", r.fields)
    activities = tuple(Activity(a["id"], a["type"]) for a in r.activities) if r.activities else None
    query = GroupAggQuery(r.groupId, activities, tuple(r.fields) if r.fields is not None else None)
    return ctx.ok(group_aggregates.group_agg(ctx.app.store, ctx.user, query, ctx.now, ctx.app.cache))
