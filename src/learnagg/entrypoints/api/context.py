"""Per-request context handed to routers: the application, "now" read once (docs/reference/data-model.md#c2), and the
caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from learnagg.app import App
from learnagg.domain.identity import Caller
from learnagg.entrypoints.api import envelope
from learnagg.entrypoints.api.auth import resolve_caller


@dataclass(slots=True)
class RequestContext:
    """What a router needs to call one service and shape the envelope."""

    request: Request
    app: App
    now: int
    caller: Caller | None = None

    @property
    def user(self) -> Caller:
        """The authenticated caller (routes using :data:`Authed` always have one)."""
        assert self.caller is not None, "route is not authenticated"
        return self.caller

    def ok(self, result: Any) -> Response:
        """The success envelope around ``result``."""
        return envelope.render(self.request, result, now=self.now, zone=self.app.settings.timezone)


def _app(request: Request) -> App:
    return request.app.state.learnagg


def public_context(request: Request) -> RequestContext:
    """Context without authentication (health)."""
    app = _app(request)
    return RequestContext(request=request, app=app, now=app.clock())


def authenticated_context(request: Request) -> RequestContext:
    """Context with the caller resolved from the token or trusted header; 401 without an identity."""
    app = _app(request)
    caller = resolve_caller(request, app, request.app.state.token_keys)
    return RequestContext(request=request, app=app, now=app.clock(), caller=caller)


Public = Annotated[RequestContext, Depends(public_context)]
Authed = Annotated[RequestContext, Depends(authenticated_context)]
