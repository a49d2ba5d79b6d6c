"""Routes of the exhaust request API (docs/api.md#report-requests): submit, read, list, and download a request's files.

Each route is served under the issue's ``/v1/dataset/request/…`` and the reference platform's ``/dataset/v1/request/…``.

Download links (``downloadUrls`` of a finished job) are made when a job is read, never stored:
``<base>/v1/dataset/request/download/<requestId>/<file>.zip?expires=<ms>&signature=<hex>``, where base is setting
``exhaust.public_url`` or the address the API was called at.
The signature is an HMAC-SHA256 of ``<requestId>/<file>:<expires>`` with a key derived from ``exhaust.secret_key`` (or
a secret generated once in `app_secret`); links end at ``expiresAt`` (now + ``exhaust.url_expiry_minutes``). A valid
link is enough on its own; a caller who also sends an identity must be the requester or an admin. Without a link, the
requester or an admin of the request's channel (ORG_ADMIN there, or a platform admin allowed on the channel) may
download with their token. The link or the identity is checked before the request is looked up (docs/api.md).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse

from learnagg.adapters.exhaust_keys import exhaust_keys
from learnagg.adapters.objectstore import open_store
from learnagg.app import App
from learnagg.domain import exhaust as dx
from learnagg.domain.identity import Caller
from learnagg.entrypoints.api.analytics_envelope import AnalyticsRoute, render
from learnagg.entrypoints.api.auth import resolve_caller
from learnagg.entrypoints.api.openapi import OPTIONAL_SECURITY, SECURED
from learnagg.entrypoints.api.schemas.platform_results import (
    AnalyticsErrorEnvelope,
    ExhaustJobEnvelope,
    ExhaustListEnvelope,
    ExhaustReadEnvelope,
)
from learnagg.services.exhaust_requests import FILE_NOT_FOUND, ExhaustRefused, ExhaustRequests

router = APIRouter(tags=["exhaust"], route_class=AnalyticsRoute, dependencies=SECURED)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": AnalyticsErrorEnvelope, "description": text}
    for status, text in {
        400: "Invalid request: `X-Channel-ID is missing in request header`, `tag is empty`, a body that is not JSON…",
        401: "No valid identity.",
        403: "Not an exhaust role holder of the channel (or not the requester).",
        404: "Unknown request or file.",
        413: "Body larger than setting `api.max_body_bytes` (`err` REQUEST_TOO_LARGE).",
        500: "Unexpected failure.",
    }.items()
}
PREFIXES = ("/v1/dataset/request", "/dataset/v1/request")
IDS = {
    "submit": "ekstep.analytics.dataset.request.submit",
    "read": "ekstep.analytics.dataset.request.info",
    "list": "ekstep.analytics.dataset.request.list",
    "download": "ekstep.analytics.dataset.request.download",
}
CHUNK = 1 << 20


def _app(request: Request) -> App:
    return request.app.state.learnagg


def _caller(request: Request) -> Caller:
    return resolve_caller(request, _app(request), request.app.state.token_keys)


def _requests(request: Request) -> ExhaustRequests:
    app = _app(request)
    keys = getattr(request.app.state, "exhaust_keys", None)
    if keys is None:  # read (or generated) once per service, not per call
        keys = request.app.state.exhaust_keys = exhaust_keys(app.settings.exhaust.secret_key, app.store, app.clock())
    return ExhaustRequests(app, keys, app.clock(), str(request.base_url))


def _channel(request: Request) -> str | None:
    return request.headers.get("x-channel-id")


def submit(request: Request, body: Annotated[Any, Body()] = None) -> Response:
    """Submit a progress or response exhaust request (same-day resubmission returns the existing one)."""
    caller = _caller(request)
    payload = body.get("request") if isinstance(body, dict) else None
    job = _requests(request).submit(caller, _channel(request), payload)
    return render(request, IDS["submit"], job)


def read(request: Request, tag: str, requestId: str | None = None) -> Response:
    """One request of the caller (or, for an admin, of the channel) by tag and requestId."""
    caller = _caller(request)
    job = _requests(request).read(caller, _channel(request), tag, requestId)
    if job is None:  # docs/api.md#report-requests: 200 with status failed
        return render(request, IDS["read"], None, errmsg=dx.NO_JOB)
    return render(request, IDS["read"], job)


def list_jobs(request: Request, tag: str, limit: str | None = None) -> Response:
    """The requests of a tag, newest submission first (``limit``, default 10)."""
    caller = _caller(request)
    jobs = _requests(request).list(caller, _channel(request), tag, limit)
    return render(request, IDS["list"], jobs)


def _has_identity(request: Request) -> bool:
    headers = request.headers
    return bool(
        headers.get("x-authenticated-user-token")
        or headers.get("authorization")
        or headers.get("x-authenticated-userid")
    )


def download(
    request: Request, requestId: str, file: str, expires: str | None = None, signature: str | None = None
) -> Response:
    """Stream one zip of a request: with a signed link that has not expired, or as its requester or an admin."""
    caller = _caller(request) if _has_identity(request) else None
    app = _app(request)
    key = _requests(request).download(caller, requestId, file, expires, signature)
    blobs = open_store(app.settings.blob_url)
    if not blobs.exists(key):
        raise ExhaustRefused(404, FILE_NOT_FOUND)
    size = blobs.size(key)

    def chunks() -> Iterator[bytes]:
        with blobs.open_read(key) as f:
            while block := f.read(CHUNK):
                yield block

    name = posixpath.basename(key)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type="application/zip", headers=headers)


# The submit body as documented: the route itself takes any JSON and answers its refusals in the envelope.
SUBMIT_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request": {
            "type": "object",
            "properties": {
                "tag": {"type": "string"},
                "dataset": {"type": "string", "enum": ["progress-exhaust", "response-exhaust"]},
                "requestedBy": {"type": "string"},
                "datasetConfig": {"type": "object"},
                "encryptionKey": {"type": "string"},
                "outputFormat": {"type": "string", "enum": ["csv"]},
            },
            "required": ["tag", "dataset", "datasetConfig"],
        }
    },
}
ZIP: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The zip file.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}
CHANNEL = {
    "name": "X-Channel-ID",
    "in": "header",
    "required": False,  # documented as optional so that its absence reaches the route's own 400
    "description": "The channel (root organisation) the request belongs to; required by the service.",
    "schema": {"type": "string"},
}
_JSON = {"content": {"application/json": {"schema": SUBMIT_BODY}}, "required": True}


ROUTES: list[tuple[str, str, str, Callable[..., Response], str, dict[str, Any]]] = [
    ("POST", "/submit", "submit", submit, "Submit an exhaust request", {"response_model": ExhaustJobEnvelope}),
    ("GET", "/read/{tag}", "read", read, "Read one exhaust request", {"response_model": ExhaustReadEnvelope}),
    ("GET", "/list/{tag}", "list", list_jobs, "List the requests of a tag", {"response_model": ExhaustListEnvelope}),
    ("GET", "/download/{requestId}/{file}", "download", download, "Download a file", {}),
]
OPENAPI_EXTRA: dict[str, dict[str, Any]] = {
    "submit": {"requestBody": _JSON, "parameters": [CHANNEL]},
    "read": {"parameters": [CHANNEL]},
    "list": {"parameters": [CHANNEL]},
    "download": {"security": OPTIONAL_SECURITY},
}
for _prefix in PREFIXES:
    for _method, _path, _key, _endpoint, _summary, _documented in ROUTES:
        router.add_api_route(
            _prefix + _path,
            _endpoint,
            methods=[_method],
            name=IDS[_key],
            summary=_summary,
            include_in_schema=_prefix == PREFIXES[0],
            responses={**(ZIP if _key == "download" else {}), **ERRORS},
            openapi_extra=OPENAPI_EXTRA.get(_key),
            **_documented,
        )
