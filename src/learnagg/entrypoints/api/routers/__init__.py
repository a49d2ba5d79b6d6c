"""One router per API family; `ROUTERS` lists them for the app factory."""

from __future__ import annotations

from fastapi import APIRouter

from learnagg.entrypoints.api.dashboard import router as dashboard_router
from learnagg.entrypoints.api.routers import (
    assessments,
    batches,
    content_state,
    courses,
    enrolments,
    exhaust,
    group_aggregates,
    groups,
    users,
)

ROUTERS: list[APIRouter] = [
    group_aggregates.router,
    content_state.router,
    assessments.router,
    users.router,
    courses.router,
    batches.router,
    enrolments.router,
    groups.router,
    exhaust.router,
    dashboard_router,
]
