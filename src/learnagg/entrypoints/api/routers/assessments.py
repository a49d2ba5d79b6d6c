"""Routes of the assessments API family (docs/api.md#content-state-and-assessments): save, submit and read the caller's
attempts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed, RequestContext
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.content import AssessmentsRead, AssessmentsSend
from learnagg.entrypoints.api.schemas.results import AssessmentsReadResult, AssessmentsSendResult
from learnagg.entrypoints.api.validation import Body
from learnagg.services import assessments

router = APIRouter(tags=["assessments"], dependencies=SECURED)


def _send(body: Body[AssessmentsSend], ctx: RequestContext, *, submit: bool) -> Response:
    result = assessments.send_assessments(
        ctx.app, user_id=ctx.user.subject, assessments=body.request.assessments, now=ctx.now, submit=submit
    )
    return ctx.ok(result)


@router.post("/v1/assess/save", summary="Publish attempts for scoring", **documented(AssessmentsSendResult))
def save(body: Body[AssessmentsSend], ctx: Authed) -> Response:
    """docs/api.md#content-state-and-assessments: check each attempt and publish those that pass; scores are written by
    the aggregator."""
    return _send(body, ctx, submit=False)


@router.post(
    "/v1/assess/submit",
    summary="Publish attempts, complete their contents, show their scores",
    **documented(AssessmentsSendResult),
)
def submit(body: Body[AssessmentsSend], ctx: Authed) -> Response:
    """docs/api.md#content-state-and-assessments: like save, then each submitted content is completed as a
    docs/api.md#content-state-and-assessments status-2 item."""
    return _send(body, ctx, submit=True)


@router.post(
    "/v1/assess/read",
    summary="The caller's attempts and best score per assessment",
    **documented(AssessmentsReadResult),
)
def read(body: Body[AssessmentsRead], ctx: Authed) -> Response:
    """docs/api.md#content-state-and-assessments: attempts newest first (at most ``assessment.attempts.limit``) and the
    merged best score."""
    request = body.request
    result = assessments.read_assessments(
        ctx.app,
        user_id=ctx.user.subject,
        course_id=request.course_id,
        batch_id=request.batch_id,
        content_ids=request.contentIds,
        with_questions="questions" in (request.fields or ()),
    )
    return ctx.ok(result)
