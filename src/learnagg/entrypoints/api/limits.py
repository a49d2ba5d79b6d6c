"""Request limits applied before any route (docs/api.md): body size, JSON whatever the Content-Type, list lengths.

A pure ASGI middleware reads the body once, counting bytes as they arrive, and hands it on to the app. A
``Content-Length`` above ``api.max_body_bytes`` is refused without reading a byte; a body sent without one
(chunked) stops being read as soon as it passes the limit. The refusal itself is raised by
:func:`refuse_oversized_body`, an app-wide dependency, so each route family answers it in its own envelope.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnagg.entrypoints.api.validation import LIST_LIMIT
from learnagg.errors import api_error
from learnagg.settings import ApiSettings

TOO_LARGE_KEY = "learnagg.body_too_large"  # scope key: the limit that the body passed
_LENGTH_DIGITS = 19  # a Content-Length longer than this is beyond any limit (and beyond int64)
_JSON = b"application/json"


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length``, or None when absent or not a plain ASCII number (the server refuses those)."""
    for name, value in headers:
        if name == b"content-length":
            text = value.strip()
            if not text.isdigit():  # bytes.isdigit is ASCII only
                return None
            return int(text) if len(text) <= _LENGTH_DIGITS else 1 << 64
    return None


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith(b"application/") and media.endswith(b"+json"))


def _as_json(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with any non-JSON Content-Type replaced: every body is parsed as JSON (curl's default
    ``application/x-www-form-urlencoded`` would otherwise be read as no body at all)."""
    kept = [(n, v) for n, v in headers if n != b"content-type" or _is_json(v)]
    if len(kept) == len(headers) and any(n == b"content-type" for n, _ in headers):
        return headers
    return [*(h for h in kept if h[0] != b"content-type"), (b"content-type", _JSON)]


class RequestLimits:
    """ASGI middleware: body at most ``max_body_bytes``, parsed as JSON; lists at most ``max_list_items``."""

    def __init__(self, app: ASGIApp, limits: ApiSettings) -> None:
        """Wrap ``app`` with the two limits of ``limits`` (``api.max_body_bytes``, ``api.max_list_items``), read at
        each request so the settings stay the one place they live."""
        self.app = app
        self.limits = limits

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted."""
        return self.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body within the limit, then call the app with it (or with the refusal marked)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read = await self._read(scope, receive)
        if read is None:  # the client left before sending its body: nobody to answer
            return
        body, too_large = read
        scope = dict(scope)
        if too_large:
            scope[TOO_LARGE_KEY] = self.max_body_bytes
            send = _closing(send)
        elif body:
            scope["headers"] = _as_json(list(scope["headers"]))
        token = LIST_LIMIT.set(self.limits.max_list_items)
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            LIST_LIMIT.reset(token)

    async def _read(self, scope: MutableMapping[str, Any], receive: Receive) -> tuple[bytes, bool] | None:
        declared = _declared_length(scope["headers"])
        if declared is not None and declared > self.max_body_bytes:
            return b"", True
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _closing(send: Send) -> Send:
    """A ``send`` whose response closes the connection: the rest of a refused body is never read."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return closing


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read once, then waits on the client (for its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def refuse_oversized_body(request: Request) -> None:
    """413 ``REQUEST_TOO_LARGE`` when the body passed ``api.max_body_bytes`` (marked by :class:`RequestLimits`)."""
    limit = request.scope.get(TOO_LARGE_KEY)
    if limit is not None:
        raise api_error("REQUEST_TOO_LARGE", limit=limit)
