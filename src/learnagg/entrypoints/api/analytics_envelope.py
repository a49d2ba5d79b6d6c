"""The analytics envelope of the exhaust API (docs/api.md#report-requests), and a route class that answers every error
in it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from learnagg.domain.dates import zone
from learnagg.errors import ApiError, first_line
from learnagg.services.exhaust_requests import ExhaustRefused

log = logging.getLogger("learnagg.api")

RESPONSE_CODES = {200: "OK", 400: "CLIENT_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND"}
# Codes answered in `err` as they are, not replaced by the responseCode: the app-wide limits of docs/api.md.
OWN_ERR_CODES = frozenset({"REQUEST_TOO_LARGE"})
INTERNAL = "Process failed,please try again later."
INVALID_BODY = "Invalid request body: not JSON"


def analytics_ts(now: int, zone_name: str) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS±hh:mm``, the analytics service's timestamp, in setting ``timezone``."""
    moment = datetime.fromtimestamp(now / 1000, zone(zone_name))
    return moment.isoformat(timespec="milliseconds")


def render(
    request: Request,
    api_id: str,
    result: Any,
    *,
    status: int = 200,
    errmsg: str | None = None,
    failed: bool = False,
    err: str | None = None,
) -> Response:
    """One analytics envelope: ``params.status`` is ``successful`` or ``failed``; an error's ``err`` is its
    responseCode (as the reference writes it) unless ``err`` names another code, and ``errmsg`` its message."""
    la = request.app.state.learnagg
    code = RESPONSE_CODES.get(status) or ("CLIENT_ERROR" if 400 <= status < 500 else "SERVER_ERROR")
    failed = failed or errmsg is not None
    body = {
        "id": api_id,
        "ver": "1.0",
        "ts": analytics_ts(la.clock(), la.settings.timezone),
        "params": {
            "resmsgid": str(uuid.uuid4()),
            "msgid": request.headers.get("x-msgid"),
            "status": "failed" if failed else "successful",
            "err": (err or code) if failed else None,
            "errmsg": errmsg,
        },
        "responseCode": code,
        "result": result if result is not None else {},
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class AnalyticsRoute(APIRoute):
    """A route whose refusals (and unexpected errors) use the analytics envelope, not the docs/api.md#errors one.

    The envelope id is the route's ``name`` (``ekstep.analytics.dataset.request.submit``…).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: dependency, validation and service errors become analytics envelopes."""
        handler = super().get_route_handler()
        api_id = self.name

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ExhaustRefused as exc:
                return render(request, api_id, None, status=exc.status, errmsg=exc.message)
            except ApiError as exc:  # identity (401/403) and the app-wide request checks
                err = exc.code if exc.code in OWN_ERR_CODES else None
                return render(request, api_id, None, status=exc.status, errmsg=exc.message, err=err)
            except RequestValidationError:
                return render(request, api_id, None, status=400, errmsg=INVALID_BODY)
            except HTTPException as exc:  # a body the JSON decoder gave up on (too deep, too many digits)
                errmsg = INVALID_BODY if exc.status_code == 400 else str(exc.detail)
                return render(request, api_id, None, status=exc.status_code, errmsg=errmsg)
            except Exception as exc:
                log.exception("unexpected error on %s: %s", request.url.path, first_line(exc))
                return render(request, api_id, None, status=500, errmsg=INTERNAL)

        return route
