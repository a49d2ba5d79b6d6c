"""The reference response envelope (docs/api.md#errors): `id`, `ver`, `ts`, `params`, `responseCode`, `result`."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from learnagg.domain.dates import format_api_ts
from learnagg.errors import ApiError

RESPONSE_CODES = {400: "CLIENT_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND"}


def response_code(status: int) -> str:
    """The envelope's responseCode for an HTTP status: the reference names, any other 4xx is the caller's error."""
    return RESPONSE_CODES.get(status) or ("CLIENT_ERROR" if 400 <= status < 500 else "SERVER_ERROR")


def api_id(path: str) -> str:
    """``/v1/group/read/{groupId}`` → ``api.group.read``: `/v1` becomes `api`, then the alphabetic segments."""
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] in ("v1", "data"):  # `/data/...` routes follow `/v1` (docs/api.md)
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
    """One envelope as JSON bytes (orjson: doubles keep their fraction, docs/reference/data-model.md#c4)."""
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


# --- the envelope as a typed model, for the OpenAPI document (responses are rendered by `render`) ------------------

T = TypeVar("T")


class Params(BaseModel):
    """``params`` of the envelope: ``status`` is ``success``, or the error code (``SERVER_ERROR`` without one)."""

    resmsgid: str | None = Field(description="Always null.")
    msgid: str = Field(description="The X-msgId header, or a new UUID4.")
    err: str | None = Field(description="The error code (null on success).", examples=[None])
    status: str = Field(description="`success`, or the error code.", examples=["success"])
    errmsg: str | None = Field(description="The error message (null on success).", examples=[None])


class Envelope(BaseModel, Generic[T]):
    """The reference envelope around every answer: ``result`` holds the route's result (``{}`` on errors)."""

    id: str = Field(description="The route's id: `/v1` becomes `api`, then the alphabetic path segments.")
    ver: str = Field(description="Always `v1`.", examples=["v1"])
    ts: str = Field(description="`yyyy-MM-dd HH:mm:ss:SSSZ` in setting `timezone`.")
    params: Params
    responseCode: str = Field(description="`OK`, or the status name (`CLIENT_ERROR`, `UNAUTHORIZED`, …).")
    result: T


class EmptyResult(BaseModel):
    """The empty ``result`` of an error answer."""

    model_config = ConfigDict(json_schema_extra={"maxProperties": 0})


class ErrorEnvelope(Envelope[EmptyResult]):
    """An error answer: ``params.err`` and ``params.status`` name the code, ``params.errmsg`` its message."""


# The refusals every route can answer (docs/api.md lists the codes and messages).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: `params.err` names the code (MANDATORY_PARAMETER_MISSING, DATA_TYPE_ERROR, "
    "INVALID_PARAMETER_VALUE, INVALID_REQUESTED_DATA, …).",
    401: "No valid identity: UNAUTHORIZED_USER.",
    403: "The caller may not do this: UNAUTHORIZED_USER.",
    404: "Unknown resource: GROUP_NOT_FOUND, COURSE_NOT_FOUND, BATCH_NOT_FOUND, USER_NOT_FOUND or RESOURCE_NOT_FOUND.",
    413: "Body larger than setting `api.max_body_bytes`: REQUEST_TOO_LARGE.",
    500: "Unexpected failure: INTERNAL_ERROR (ERR_CALLING_GROUOP_API for group aggregate reads).",
}


def error_responses(model: type[BaseModel] = ErrorEnvelope) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route, each in ``model``."""
    return {status: {"model": model, "description": text} for status, text in ERROR_DESCRIPTIONS.items()}


def documented(result: Any, description: str = "The result in the envelope.") -> dict[str, Any]:
    """Route keyword arguments documenting a 200 ``Envelope[result]`` and the error envelopes.

    Routes return the rendered envelope themselves, so the model only describes the answer, never converts it.
    """
    return {
        "response_model": Envelope[result],
        "response_description": description,
        "responses": error_responses(),
    }
