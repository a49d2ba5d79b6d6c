"""Routes of the group aggregates API family: `/v1/group/activity/agg` and `/v1/group/agg`
(docs/api.md#group-aggregates), their
`/data/group/*` twins and `/data/activity/agg` (docs/api.md "Group aggregates: the /data routes")."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.results import ActivityAggResult, ActivityMetricsResult, GroupAggResult
from learnagg.entrypoints.api.validation import Body, Check, RequestModel, each, list_of, required, typed
from learnagg.services import activity_agg as activity_agg_service
from learnagg.services import group_aggregates
from learnagg.services.group_aggregates import Activity, ActivityAggQuery, GroupAggQuery

router = APIRouter(tags=["group aggregates"], dependencies=SECURED)


class ActivityAggRequest(RequestModel):
    """``{"groupId", "activityId", "activityType", "includeAllMembers"?}``, checked in docs/api.md#group-aggregates
    order."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        required("activityId", "ACTIVITY_ID_MISSING"),
        required("activityType", "ACTIVITY_TYPE_MISSING"),
        typed("includeAllMembers", bool),
        list_of("fields", str),
    )

    groupId: str
    activityId: str
    activityType: str
    includeAllMembers: bool | None = None
    fields: list[str] | None = None


class ActivityMetricsRequest(RequestModel):
    """``{"activityId", "activityType", "contextId"?}`` of ``/data/activity/agg``."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("activityId", "ACTIVITY_ID_MISSING"),
        required("activityType", "ACTIVITY_TYPE_MISSING"),
        typed("contextId", str),
    )

    activityId: str
    activityType: str
    contextId: str | None = None


class GroupAggRequest(RequestModel):
    """``{"groupId", "activities"?: [{"id", "type"}], "fields"?: [string]}``, checked in docs/api.md#group-aggregates
    order."""

    CHECKS: ClassVar[tuple[Check, ...]] = (
        required("groupId", "GROUP_ID_MISSING"),
        each("activities", [required("id", "ACTIVITY_ID_MISSING"), required("type", "ACTIVITY_TYPE_MISSING")]),
        list_of("fields", str),
    )

    groupId: str
    activities: list[dict[str, Any]] | None = None
    fields: list[str] | None = None


def _activity_agg(ctx: Authed, body: Body[ActivityAggRequest]) -> Response:
    r = body.request
    fields = tuple(r.fields) if r.fields is not None else None
    query = ActivityAggQuery(r.groupId, r.activityId, r.activityType, bool(r.includeAllMembers), fields)
    app = ctx.app
    return ctx.ok(group_aggregates.activity_agg(app.store, ctx.user, query, ctx.now, app.cache, app.settings.timezone))


def _group_agg(ctx: Authed, body: Body[GroupAggRequest]) -> Response:
    r = body.request
    activities = tuple(Activity(a["id"], a["type"]) for a in r.activities) if r.activities else None
    query = GroupAggQuery(r.groupId, activities, tuple(r.fields) if r.fields is not None else None)
    app = ctx.app
    return ctx.ok(group_aggregates.group_agg(app.store, ctx.user, query, ctx.now, app.cache, app.settings.timezone))


@router.post(
    "/v1/group/activity/agg",
    summary="One activity's aggregates for every member of a group",
    **documented(ActivityAggResult),
)
def activity_agg(ctx: Authed, body: Body[ActivityAggRequest]) -> Response:
    """Per-member metrics of one activity, its enrolment count and metadata (docs/api.md#group-aggregates)."""
    return _activity_agg(ctx, body)


@router.post(
    "/data/group/activity/agg",
    summary="One activity's aggregates for every member of a group (seed note 002 route)",
    **documented(ActivityAggResult),
)
def data_activity_agg(ctx: Authed, body: Body[ActivityAggRequest]) -> Response:
    """The same request, answer and errors as ``/v1/group/activity/agg``."""
    return _activity_agg(ctx, body)


@router.post("/v1/group/agg", summary="Summary metrics of a group's activities", **documented(GroupAggResult))
def group_agg(ctx: Authed, body: Body[GroupAggRequest]) -> Response:
    """Enrolment, completion and score statistics per activity (docs/api.md#group-aggregates)."""
    return _group_agg(ctx, body)


@router.post(
    "/data/group/agg",
    summary="Summary metrics of a group's activities (seed note 002 route)",
    **documented(GroupAggResult),
)
def data_group_agg(ctx: Authed, body: Body[GroupAggRequest]) -> Response:
    """The same request, answer and errors as ``/v1/group/agg``."""
    return _group_agg(ctx, body)


@router.post(
    "/data/activity/agg",
    summary="Per-batch enrolled, completed and completion percentage of one activity",
    **documented(ActivityMetricsResult),
)
def activity_metrics(ctx: Authed, body: Body[ActivityMetricsRequest]) -> Response:
    """The stored `activity_agg` rows of one activity: platform admins and ``COURSE_MENTOR`` only."""
    r = body.request
    return ctx.ok(activity_agg_service.read(ctx.app.store, ctx.user, r.activityId, r.activityType, r.contextId))
