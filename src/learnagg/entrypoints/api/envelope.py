"""The reference response envelope (SPEC §5.1): `id`, `ver`, `ts`, `params`, `responseCode`, `result`."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from learnagg.domain.dates import format_api_ts
from learnagg.errors import ApiError

RESPONSE_CODES = {400: "CLIENT_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND"}


def response_code(status: int) -> str:
    """The envelope's responseCode for an HTTP status: the reference names, any other 4xx is the caller's error."""
    return RESPONSE_CODES.get(status) or ("CLIENT_ERROR" if 400 <= status < 500 else "SERVER_ERROR")


def api_id(path: str) -> str:
    """``/v1/group/read/{groupId}`` → ``api.group.read``: `/v1` becomes `api`, then the alphabetic segments."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] == "v1":
        segments = segments[1:]
    return ".".join(["api", *(s for s in segments if s.isalpha())])


def route_id(request: Request) -> str:
    """The envelope id of the route that matched (its path template), or of the raw path."""
    route = request.scope.get("route")
    return api_id(getattr(route, "path", None) or request.url.path)


def msgid(request: Request) -> str:
    """``X-msgId`` when the caller sent one, otherwise a new UUID4."""
    return request.headers.get("x-msgid") or str(uuid.uuid4())


def render(
    request: Request,
    result: Any,
    *,
    now: int,
    zone: str,
    status: int = 200,
    error: ApiError | None = None,
) -> Response:
    """One envelope as JSON bytes (orjson: doubles keep their fraction, SPEC C4)."""
    if error is None:
        params = {"resmsgid": None, "msgid": msgid(request), "err": None, "status": "success", "errmsg": None}
        code = "OK"
    else:
        status = error.status
        params = {
            "resmsgid": None,
            "msgid": msgid(request),
            "err": error.code,
            "status": error.code or "SERVER_ERROR",
            "errmsg": error.message,
        }
        code = response_code(status)
    body = {
        "id": route_id(request),
        "ver": "v1",
        "ts": format_api_ts(now, zone),
        "params": params,
        "responseCode": code,
        "result": result if error is None else {},
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
