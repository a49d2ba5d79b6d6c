"""The group dashboard (docs/dashboard.md): one static HTML page with its script and style sheet.

Everything the page needs is package data served from here, so it works offline and needs no build step. The
page itself is public and carries no data: it signs in with the caller's token and reads the group through the
public JSON APIs, which decide who may see what (active members and platform admins).
"""

from __future__ import annotations

import functools
import html
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from learnagg.app import App
from learnagg.errors import api_error

router = APIRouter(tags=["dashboard"], include_in_schema=False)

# The files a browser may fetch, with their media types; anything else is 404.
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard-model.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

# Only this service's own script, style sheet and API: the token in sessionStorage never leaves for another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@functools.cache
def _static(name: str) -> bytes:
    """A packaged file of ``static/``."""
    return (resources.files(__name__) / "static" / name).read_bytes()


@router.get("/dashboard/groups/{groupId}", summary="The group dashboard page")
def dashboard_page(request: Request, groupId: str) -> Response:
    """The page for one group; the group id is read back from the address by the page's script."""
    app: App = request.app.state.learnagg
    page = _static("dashboard.html").decode()
    page = page.replace("{{refresh_seconds}}", str(app.settings.dashboard.refresh_seconds))
    page = page.replace("{{group_id}}", html.escape(groupId, quote=True))
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return Response(page.encode(), media_type="text/html; charset=utf-8", headers=headers)


@router.get("/dashboard/assets/{name}", summary="A script or style sheet of the dashboard")
def dashboard_asset(name: str) -> Response:
    """One of :data:`ASSETS`; any other name is 404."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise api_error("RESOURCE_NOT_FOUND")
    return Response(_static(name), media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
