"""The OpenAPI document and the pages that show it (`/docs`, `/redoc`), served by learnagg itself.

- **Security schemes.** ``userToken`` (the ``x-authenticated-user-token`` header) and ``bearer`` (``Authorization:
  Bearer``) are declared through :data:`SECURED`, router dependencies that only read the headers: who the caller
  is stays decided by `auth.py`, which reads the same two headers (docs/api.md). Either scheme is enough.
- **No phantom 422.** FastAPI documents a 422 on every route with parameters; learnagg answers invalid input with
  a 400 error envelope instead, so the 422 and its validation-error schemas are removed from the document.
- **No CDN.** Swagger UI and ReDoc come from the ``fastapi-offline`` package's static files, mounted under
  :data:`ASSETS_URL`, so the pages work without network access.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.params import Depends
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.staticfiles import StaticFiles

ASSETS_PACKAGE = ("fastapi_offline", "static")  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
ASSETS_URL = "/docs-assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

token_header = APIKeyHeader(
    name="x-authenticated-user-token",
    scheme_name="userToken",
    description="A signed user token (`learnagg token USER` prints one in the embedded mode).",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="bearer",
    description="The same token as `Authorization: Bearer <token>`.",
    bearerFormat="JWT",
    auto_error=False,
)
# Router dependencies documenting that a route takes either scheme; they never refuse a request.
SECURED: list[Depends] = [Security(token_header), Security(bearer)]
# Added to the two schemes of SECURED on a route that also answers without an identity (a signed download link).
OPTIONAL_SECURITY: list[dict[str, list[str]]] = [{}]

_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _drop_default_json(content: dict[str, Any]) -> None:
    """Drop the empty JSON schema FastAPI adds beside a route's own media type (a download's zip)."""
    if len(content) > 1 and content.get("application/json") == {"schema": {}}:
        del content["application/json"]


def without_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """The document without FastAPI's 422 answers and their schemas (learnagg never sends a 422), and without
    the empty JSON body FastAPI documents beside a route's own media type."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for response in responses.values():
                    _drop_default_json(response.get("content", {}))
    components = schema.get("components", {}).get("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def _document(api: FastAPI) -> dict[str, Any]:
    if api.openapi_schema is None:
        schema = get_openapi(
            title=api.title,
            version=api.version,
            openapi_version=api.openapi_version,
            summary=api.summary,
            description=api.description,
            routes=api.routes,
            tags=api.openapi_tags,
            servers=api.servers,
        )
        api.openapi_schema = without_validation_errors(schema)
    return api.openapi_schema


def install(api: FastAPI) -> None:
    """Serve the document at ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their
    assets from learnagg itself. The app must be created with ``docs_url=None, redoc_url=None``."""
    api.openapi = lambda: _document(api)  # type: ignore[method-assign]
    api.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @api.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}",
            title=f"{api.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @api.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @api.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{api.openapi_url}",
            title=f"{api.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )
