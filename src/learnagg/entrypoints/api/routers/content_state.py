"""Routes of the content state API family (docs/api.md#content-state-and-assessments): a learner's own progress."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.content import ContentStateRead, ContentStateUpdate
from learnagg.entrypoints.api.schemas.results import ContentStateReadResult, ContentStateUpdateResult
from learnagg.entrypoints.api.validation import Body
from learnagg.services import content_state

router = APIRouter(tags=["content state"], dependencies=SECURED)


@router.post(
    "/v1/content/state/read",
    summary="The caller's content consumption, attempts and best scores",
    **documented(ContentStateReadResult),
)
def read_content_state(body: Body[ContentStateRead], ctx: Authed) -> Response:
    """docs/api.md#content-state-and-assessments: rows of the subject (requestedFor, otherwise the caller) only; the
    body's userId is ignored."""
    request = body.request
    result = content_state.read_content_state(
        ctx.app,
        user_id=ctx.user.subject,
        course_id=request.course_id,
        batch_id=request.batchId,
        content_ids=request.contentIds,
        fields=request.fields or ["progress"],
    )
    return ctx.ok(result)


@router.patch(
    "/v1/content/state/update",
    summary="Record progress and publish assessment attempts",
    **documented(ContentStateUpdateResult),
)
def update_content_state(body: Body[ContentStateUpdate], ctx: Authed) -> Response:
    """docs/api.md#content-state-and-assessments: merge content items into the subject's consumption rows and publish
    their attempts."""
    request = body.request
    result = content_state.update_content_state(
        ctx.app,
        user_id=ctx.user.subject,
        contents=request.contents or [],
        assessments=request.assessments or [],
        now=ctx.now,
    )
    return ctx.ok(result)
