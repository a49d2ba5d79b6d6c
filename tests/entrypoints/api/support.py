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


# --- platform data through the API (SPEC §5.9) ------------------------------------------------------------------


def create_user(api: Api, user_id: str, **fields: Any) -> None:
    """Load one user (as an admin) with the given camelCase fields (``firstName``, ``roles``…)."""
    ok(api.as_admin().post("/v1/user/load", {"users": [{"id": user_id, **fields}]}))


def create_batch(api: Api, course_id: str, batch_id: str, status: int = 1, **fields: Any) -> str:
    """Create a batch of a loaded course (as an admin); extra camelCase fields (``endDate``…) are sent as given."""
    request = {"courseId": course_id, "batchId": batch_id, "name": batch_id, "startDate": "2023-01-01"}
    result = ok(api.as_admin().post("/v1/course/batch/create", {**request, "status": status, **fields}))
    return str(result["batchId"])


def enrol(api: Api, user_id: str, course_id: str, batch_id: str) -> None:
    """Enrol a user in a batch (as an admin)."""
    ok(api.as_admin().post("/v1/course/enrol", {"courseId": course_id, "batchId": batch_id, "userId": user_id}))


def create_group(
    api: Api,
    owner: str,
    members: list[tuple[str, str]] | None = None,
    activities: list[str | dict[str, str]] | None = None,
    name: str = "group",
) -> str:
    """Create a group as ``owner`` (its admin) with ``(userId, role)`` members; an activity given as a text is a
    Course id. Returns the group id."""
    request = {
        "name": name,
        "members": [{"userId": u, "role": r} for u, r in members or []],
        "activities": [a if isinstance(a, dict) else {"id": a, "type": "Course"} for a in activities or []],
    }
    return str(ok(api.as_user(owner).post("/v1/group/create", request))["groupId"])
