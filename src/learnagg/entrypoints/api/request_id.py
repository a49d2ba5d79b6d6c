"""The request id: ``X-Request-ID`` in (kept when it is a plain token) and out, and in every record logged meanwhile."""

from __future__ import annotations

import re
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnagg.logs import bind_request, unbind_request

HEADER = "X-Request-ID"
# A caller's id is kept only when it is short and plain: it is written into every log line of the request.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when acceptable, otherwise a new random id (32 hex digits)."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _ACCEPTED.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def _route_of(scope: MutableMapping[str, Any]) -> str | None:
    """The path template of the route serving the request (set in ``scope`` once routing has run)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


class RequestIdMiddleware:
    """Gives each HTTP request an id, answers it in ``X-Request-ID``, and logs its records with it and the route."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the ASGI application."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its log context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = bind_request(request_id, lambda: _route_of(scope))
        await self.app(scope, receive, send_with_id)
        # Unbound only after a normal end: after an exception the unexpected-error handler, which runs outside this
        # middleware but in the same task, logs the error with the request's id; the task ends with the request.
        unbind_request(token)
