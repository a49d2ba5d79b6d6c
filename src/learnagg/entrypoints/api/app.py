"""The FastAPI application factory: envelope, error handlers, routers (docs/api.md)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from learnagg import bootstrap, logs
from learnagg.adapters.tokens import token_keys
from learnagg.entrypoints.api import envelope, health
from learnagg.entrypoints.api import metrics as api_metrics
from learnagg.entrypoints.api.health import JobHealth
from learnagg.entrypoints.api.limits import RequestLimits, refuse_oversized_body
from learnagg.entrypoints.api.openapi import install as install_docs
from learnagg.entrypoints.api.request_id import RequestIdMiddleware
from learnagg.entrypoints.api.routers import ROUTERS
from learnagg.entrypoints.api.validation import to_api_error
from learnagg.errors import ApiError, api_error, first_line
from learnagg.settings import load_settings

log = logging.getLogger("learnagg.api")


async def refuse_nul_characters(request: Request) -> None:
    """Refuse text with NUL characters (``\\u0000``) anywhere in the request: PostgreSQL cannot store them in text,
    so they would otherwise surface as a server error deep in a write (docs/api.md)."""
    if "\x00" in request.url.path or "%00" in request.url.query.lower():
        raise api_error("INVALID_REQUESTED_DATA")
    if request.method in ("POST", "PATCH", "PUT") and b"\\u0000" in await request.body():
        raise api_error("INVALID_REQUESTED_DATA")


def _error(request: Request, error: ApiError) -> Response:
    la: bootstrap.App = request.app.state.learnagg
    return envelope.render(request, {}, now=la.clock(), zone=la.settings.timezone, error=error)


def create_app(app: bootstrap.App, jobs: JobHealth | None = None) -> FastAPI:
    """The HTTP service over an application built by :func:`learnagg.bootstrap.build`; ``jobs``: the job loops this
    process runs, which readiness reports on."""

    @contextlib.asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        # Routes are sync and run in anyio's thread pool (40 threads by default). Their work is Python under the
        # GIL, so many threads only interleave: one per core served 100x10 group aggregates 1.5x faster on
        # SQLite with the same CPU per request falling from 7.4 to 4.5 ms (BENCHMARKS.md).
        threads = app.settings.api.threads or os.cpu_count() or 2
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    api = FastAPI(
        lifespan=lifespan,
        title="learnagg",
        version="1",
        description="Group activity aggregates with scores, content state, assessments and platform data.",
        dependencies=[Depends(refuse_oversized_body), Depends(refuse_nul_characters)],
        docs_url=None,  # /docs and /redoc are served with local assets by install_docs (no CDN)
        redoc_url=None,
    )
    install_docs(api)
    api_metrics.install(api, app)  # GET /metrics; inside RequestLimits so it sees the route picked
    # Records of a request carry its id and route; inside RequestLimits, which copies the scope the router fills.
    api.add_middleware(RequestIdMiddleware)
    api.add_middleware(RequestLimits, limits=app.settings.api)
    api.state.jobs = jobs
    api.state.learnagg = app
    api.state.token_keys = token_keys(app.settings.auth, app.store, app.clock())

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error(request, exc)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, to_api_error(exc.errors()))

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return _error(request, api_error("METHOD_NOT_ALLOWED"))
        if exc.status_code == 404:
            return _error(request, api_error("RESOURCE_NOT_FOUND"))
        if exc.status_code == 400:  # a body the JSON decoder gave up on (too deep, a number of 5,000 digits)
            return _error(request, api_error("INVALID_REQUESTED_DATA"))
        return _error(request, ApiError(None, str(exc.detail), exc.status_code))

    @api.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> Response:
        log.error("database error on %s: %s", request.url.path, first_line(exc))
        return _error(request, api_error("INTERNAL_ERROR"))

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error(request, api_error("INTERNAL_ERROR"))

    api.include_router(health.router)
    for router in ROUTERS:
        api.include_router(router)
    return api


def from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: the app built from LEARNAGG_* settings (used with --workers N)."""
    settings = load_settings()
    logs.configure(settings.log)  # each process of `serve --workers N` sets up its own logging
    return create_app(bootstrap.build(settings))
