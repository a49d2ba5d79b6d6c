"""Health: `/health/live` (the process serves), `/health/ready` (store, bus, Redis and jobs answer), `/health`.

``/health`` keeps its reference envelope and means the same as ``/health/ready`` (docs/operations.md "Health").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Executable, func, select
from sqlalchemy.exc import SQLAlchemyError

from learnagg.app import App
from learnagg.entrypoints.api.context import Public
from learnagg.errors import first_line

OK = "ok"
_REDIS_TIMEOUT = 0.5  # seconds: a probe must answer well within a load balancer's check interval


class JobHealth(Protocol):
    """What readiness needs from the jobs this process runs (a :class:`~learnagg.streams.supervisor.JobSupervisor`)."""

    def status(self) -> dict[str, str]:
        """``{job: "ok" | why it is not running}``."""
        ...


class HealthReport(BaseModel):
    """The answer of ``/health/live`` and ``/health/ready``."""

    status: Literal["ok", "failing"] = Field(description="`ok` when every check is `ok`.")
    checks: dict[str, str] = Field(
        description="One entry per check (`store`, `bus`, `redis`, `job:<name>`): `ok` or why it fails."
    )


router = APIRouter(tags=["service"])


def _probe(app: App, statement: Executable) -> str:
    try:
        with app.store.read() as conn:
            conn.execute(statement)
    except SQLAlchemyError as exc:
        return f"unavailable: {first_line(exc)}"
    return OK


def _redis(app: App) -> str:
    """PING the configured Redis (the group cache's client when there is one)."""
    try:
        import redis
    except ImportError:
        return "unavailable: the redis client is not installed (pip install 'learnagg[redis]')"
    shared: redis.Redis | None = getattr(app.cache, "client", None)
    own = shared is None
    client = (
        shared
        if shared is not None
        else redis.Redis.from_url(
            app.settings.redis_url, socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT
        )
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"unavailable: {first_line(exc)}"
    finally:
        if own:
            client.close()
    return OK


def _bus(app: App) -> str:
    """PING a bus outside the store (Redis Streams: every cluster primary) on a short-lived client."""
    try:
        answered = app.log.ping(timeout=_REDIS_TIMEOUT)  # type: ignore[attr-defined]
    except Exception as exc:  # redis-py's errors, and a cluster whose seed nodes all refuse
        return f"unavailable: {first_line(exc) or type(exc).__name__}"
    return OK if answered else "unavailable: no answer to PING"


def checks(app: App, jobs: JobHealth | None) -> dict[str, str]:
    """Every readiness check: ``{name: "ok" | reason}``; ``bus`` reads the event log, or pings Redis Streams."""
    from learnagg.adapters.store.tables import event_log

    probes: dict[str, Callable[[], str]] = {
        "store": lambda: _probe(app, select(1)),
        "bus": (
            (lambda: _bus(app))
            if hasattr(app.log, "ping")
            else (lambda: _probe(app, select(func.max(event_log.c.seq))))
        ),
    }
    if app.settings.redis_url:
        probes["redis"] = lambda: _redis(app)
    result = {name: probe() for name, probe in probes.items()}
    for job, state in (jobs.status() if jobs is not None else {}).items():
        result[f"job:{job}"] = state
    return result


def _jobs(request: Request) -> JobHealth | None:
    return getattr(request.app.state, "jobs", None)


def _report(values: dict[str, str]) -> JSONResponse:
    healthy = all(v == OK for v in values.values())
    body = HealthReport(status="ok" if healthy else "failing", checks=values)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


_FAILING: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "A check failed: its entry in `checks` says why."}
}


@router.get(
    "/health/live",
    summary="The process serves requests",
    response_model=HealthReport,
    response_description="Always `ok` while the process answers.",
)
def live() -> JSONResponse:
    """200 while the process answers; checks nothing else (restart the process when it does not answer)."""
    return _report({})


@router.get(
    "/health/ready",
    summary="Store, bus, Redis (when configured) and every job of this process are up",
    response_model=HealthReport,
    responses=_FAILING,
)
def ready(request: Request) -> JSONResponse:
    """200 when the store and the bus (and Redis when configured) answer and every job this process runs is alive;
    otherwise 503 naming the failing checks (send no traffic to it)."""
    return _report(checks(request.app.state.learnagg, _jobs(request)))


@router.get("/health", summary="Readiness in the reference envelope (same checks as /health/ready)")
def health(ctx: Public) -> Response:
    """The reference envelope: ``result.healthy`` and one ``{name, healthy[, error]}`` per check; 503 when failing."""
    values = checks(ctx.app, _jobs(ctx.request))
    values["log"] = values.pop("bus")  # the reference name of the event-log check
    listed: list[dict[str, Any]] = []
    for name in ("store", "log", *(n for n in values if n not in ("store", "log"))):
        entry: dict[str, Any] = {"name": name, "healthy": values[name] == OK}
        if values[name] != OK:
            entry["error"] = values[name]
        listed.append(entry)
    healthy = all(v == OK for v in values.values())
    response = ctx.ok({"healthy": healthy, "checks": listed})
    response.status_code = 200 if healthy else 503
    return response
