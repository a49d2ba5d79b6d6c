"""Routes of the enrolment API family: enrol, unenrol, list (docs/api.md#platform-data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.platform import EnrolmentList, EnrolRequest
from learnagg.entrypoints.api.schemas.platform_results import EnrolmentListResult, Success
from learnagg.entrypoints.api.validation import Body
from learnagg.services import enrolments

router = APIRouter(tags=["enrolments"], dependencies=SECURED)


@router.post("/v1/course/enrol", summary="Enrol a learner in a batch", **documented(Success))
def enrol(ctx: Authed, body: Body[EnrolRequest]) -> Response:
    """userId defaults to the caller; another user needs a platform admin."""
    r = body.request
    return ctx.ok(enrolments.enrol(ctx.app, ctx.user, r.courseId, r.batchId, r.userId, ctx.now))


@router.post("/v1/course/unenrol", summary="Unenrol a learner from a batch", **documented(Success))
def unenrol(ctx: Authed, body: Body[EnrolRequest]) -> Response:
    """Sets the enrolment inactive; aggregates are kept."""
    r = body.request
    return ctx.ok(enrolments.unenrol(ctx.app, ctx.user, r.courseId, r.batchId, r.userId, ctx.now))


@router.post("/v1/course/enrolment/list", summary="A learner's active enrolments", **documented(EnrolmentListResult))
def enrolment_list(ctx: Authed, body: Body[EnrolmentList]) -> Response:
    """The caller's own (or, for a platform admin, anyone's) enrolments."""
    return ctx.ok(enrolments.list_enrolments(ctx.app, ctx.user, body.request.userId))
