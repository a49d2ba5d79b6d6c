"""Routes of the course hierarchy API family (docs/reference/data-model.md#hierarchy, docs/api.md#platform-data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from learnagg.entrypoints.api.context import Authed
from learnagg.entrypoints.api.envelope import documented
from learnagg.entrypoints.api.openapi import SECURED
from learnagg.entrypoints.api.schemas.platform import HierarchyLoad
from learnagg.entrypoints.api.schemas.platform_results import HierarchyLoadResult, HierarchyResult
from learnagg.entrypoints.api.validation import Body
from learnagg.services import courses

router = APIRouter(tags=["courses"], dependencies=SECURED)


@router.post(
    "/v1/course/hierarchy/load",
    summary="Load or replace a course hierarchy (platform admins)",
    **documented(HierarchyLoadResult),
)
def load_hierarchy(ctx: Authed, body: Body[HierarchyLoad]) -> Response:
    """Result ``{"courseId", "leafNodesCount"}``; an invalid hierarchy is INVALID_PARAMETER_VALUE."""
    return ctx.ok(courses.load_course_hierarchy(ctx.app, ctx.user, body.request.hierarchy, ctx.now))


@router.get(
    "/v1/course/hierarchy/read/{courseId}", summary="A course hierarchy as loaded", **documented(HierarchyResult)
)
def read_hierarchy(ctx: Authed, courseId: str) -> Response:
    """Any authenticated user; 404 COURSE_NOT_FOUND."""
    return ctx.ok(courses.read_course_hierarchy(ctx.app, courseId))


@router.get(
    "/v1/course/hierarchy/{courseId}",
    summary="A course hierarchy as loaded (the dashboard's read)",
    **documented(HierarchyResult),
)
def hierarchy(ctx: Authed, courseId: str) -> Response:
    """Any signed-in user; the same result as ``/v1/course/hierarchy/read/{courseId}``; 404 COURSE_NOT_FOUND."""
    return ctx.ok(courses.read_course_hierarchy(ctx.app, courseId))
