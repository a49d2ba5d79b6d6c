"""``GET /metrics`` and the HTTP instrumentation: requests and their duration per route template and status."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnagg import bootstrap
from learnagg.adapters.metrics import CONTENT_TYPE, UNMATCHED_ROUTE, Metrics
from learnagg.streams.metrics import watch_lag


class HttpMetrics:
    """ASGI middleware: counts each answered request and times it under its route template (``/v1/x/{id}``).

    The label is the template of the route that matched, never the raw path, so ids in paths do not create new
    series; a request no route matches is labelled ``unmatched``. A request whose handler raised is counted with
    the 500 it is answered with.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        """Wrap ``app``, counting into ``metrics``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the status of the response it gets."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = self._template(scope)
            self.metrics.http_requests.labels(route, str(status)).inc()
            self.metrics.http_seconds.labels(route).observe(time.perf_counter() - started)

    @staticmethod
    def _template(scope: Scope) -> str:
        """The path template of the route the router picked for ``scope`` (it records it in the scope)."""
        path = getattr(scope.get("route"), "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE


def install(api: FastAPI, app: bootstrap.App) -> None:
    """Instrument ``api`` and serve the App's metrics (and the lag of every stream job) at ``GET /metrics``.

    Call it before adding middlewares that copy the scope (``RequestLimits``): the instrumentation must sit inside
    them to see the route the router records in the scope.
    """
    watch_lag(app, bootstrap.JOBS.values())
    api.add_middleware(HttpMetrics, metrics=app.metrics)

    @api.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """The Prometheus text exposition format."""
        return Response(content=app.metrics.render(), media_type=CONTENT_TYPE)
