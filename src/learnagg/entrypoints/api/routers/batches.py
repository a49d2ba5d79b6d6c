"""Routes of the course batch API family (docs/reference/data-model.md#enrolment, docs/api.md#platform-data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.platform import BatchCreate, BatchUpdate
from learnagg.entrypoints.api.schemas.platform_results import BatchCreateResult, BatchResult, Success
from learnagg.entrypoints.api.validation import Body
from learnagg.services import batches

router = APIRouter(tags=["batches"], dependencies=SECURED)


@router.post(
    "/v1/course/batch/create", summary="Create a batch of a course (platform admins)", **documented(BatchCreateResult)
)
def create(ctx: Authed, body: Body[BatchCreate]) -> Response:
    """Result ``{"batchId"}``; the status defaults from the dates (docs/api.md#platform-data)."""
    r = body.request
    return ctx.ok(batches.create_batch(ctx.app, ctx.user, r.to_batch(), ctx.now))


@router.patch("/v1/course/batch/update", summary="Update a batch (platform admins)", **documented(Success))
def update(ctx: Authed, body: Body[BatchUpdate]) -> Response:
    """Sets the given fields; 404 BATCH_NOT_FOUND."""
    r = body.request
    return ctx.ok(batches.update_batch(ctx.app, ctx.user, r.courseId, r.batchId, r.changes(), ctx.now))


@router.get("/v1/course/batch/read/{batchId}", summary="One batch", **documented(BatchResult))
def read(ctx: Authed, batchId: str) -> Response:
    """Any authenticated user; 404 BATCH_NOT_FOUND."""
    return ctx.ok(batches.read_batch(ctx.app, batchId))
