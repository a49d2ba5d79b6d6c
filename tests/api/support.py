"""API test helpers: signed tokens, envelope assertions, platform data set-up through the API itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.adapters.tokens import TokenKeys
from learnagg.domain.identity import PLATFORM_ADMIN

ADMIN = "admin-1"


@dataclass
class Api:
    """A test client acting as one user (or anonymous)."""

    client: TestClient
    app: bootstrap.App
    keys: TokenKeys
    user: str | None = None
    roles: list[str] = field(default_factory=list)

    def as_user(self, user_id: str) -> Api:
        """The same client with a token for ``user_id``."""
        return Api(self.client, self.app, self.keys, user_id, [])

    def as_admin(self, user_id: str = ADMIN) -> Api:
        """The same client with a platform-admin token."""
        return Api(self.client, self.app, self.keys, user_id, [PLATFORM_ADMIN])

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Request headers: the token when acting as a user, plus ``extra``."""
        out: dict[str, str] = {}
        if self.user is not None:
            out["x-authenticated-user-token"] = self.keys.mint(self.user, self.app.clock(), self.roles)
        out.update(extra or {})
        return out

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        """One HTTP call; ``body`` is sent as JSON unless ``content=`` is given."""
        headers = self.headers(kwargs.pop("headers", None))
        if body is not None:
            kwargs["json"] = body
        return self.client.request(method, path, headers=headers, **kwargs)

    def post(self, path: str, request: Any = None, **kwargs: Any) -> httpx.Response:
        """POST ``{"request": request}``."""
        return self.call("POST", path, {"request": request} if request is not None else None, **kwargs)

    def patch(self, path: str, request: Any = None, **kwargs: Any) -> httpx.Response:
        """PATCH ``{"request": request}``."""
        return self.call("PATCH", path, {"request": request} if request is not None else None, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET."""
        return self.call("GET", path, **kwargs)


def ok(response: httpx.Response) -> Any:
    """Assert a 200 success envelope and return its ``result``."""
    body = response.json()
    assert response.status_code == 200, body
    assert body["responseCode"] == "OK" and body["params"]["status"] == "success", body
    return body["result"]


def error(response: httpx.Response, status: int, code: str | None, message: str | None = None) -> dict[str, Any]:
    """Assert an error envelope with the HTTP status, code and (optionally) exact message; return the body."""
    body = response.json()
    assert response.status_code == status, body
    assert body["params"]["err"] == code, body
    assert body["params"]["status"] == (code or "SERVER_ERROR"), body
    assert body["result"] == {}, body
    if message is not None:
        assert body["params"]["errmsg"] == message, body
    return body
