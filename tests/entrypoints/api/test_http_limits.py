"""Request limits on SQLite and PostgreSQL: body size (413), JSON whatever the Content-Type, list lengths at
every depth of the request models (docs/api.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from learnagg import bootstrap
from learnagg.entrypoints.api.app import create_app
from learnagg.entrypoints.api.limits import RequestLimits
from learnagg.settings import ApiSettings, Settings
from tests.entrypoints.api.support import Api, create_user, error, ok

LIMIT, ITEMS = 4096, 10
AGG = "/v1/group/activity/agg"
READ = "/v1/content/state/read"
TOO_LARGE = f"Request body exceeds {LIMIT} bytes."


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A small body limit (4 KiB) and a small list limit (10)."""
    return Settings(database_url=database_url, api={"max_body_bytes": LIMIT, "max_list_items": ITEMS})


def _too_large(response: Any) -> None:
    body = error(response, 413, "REQUEST_TOO_LARGE", TOO_LARGE)
    assert body["responseCode"] == "CLIENT_ERROR"
    assert response.headers["connection"] == "close"


def test_body_over_the_limit_is_413_request_too_large(api: Api) -> None:
    padding = "x" * LIMIT
    request = {"groupId": "g", "activityId": "a", "activityType": "Course", "pad": padding}
    _too_large(api.as_user("u-1").post(AGG, request))
    _too_large(api.post(AGG, request))  # before identity: nothing of the body is looked at
    # At the limit the body is read as usual.
    body = orjson.dumps({"request": {"groupId": "g", "activityId": "a", "activityType": "Course"}})
    exact = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(exact) == LIMIT
    error(api.as_user("u-1").call("POST", AGG, content=exact), 404, "GROUP_NOT_FOUND")


def test_exhaust_routes_answer_413_in_their_own_envelope(api: Api) -> None:
    response = api.as_user("u-1").post("/v1/dataset/request/submit", {"tag": "x" * LIMIT})
    body = response.json()
    assert response.status_code == 413, body
    assert (body["id"], body["ver"], body["responseCode"]) == (
        "ekstep.analytics.dataset.request.submit",
        "1.0",
        "CLIENT_ERROR",
    )
    assert (body["params"]["status"], body["params"]["err"], body["params"]["errmsg"]) == (
        "failed",
        "REQUEST_TOO_LARGE",
        TOO_LARGE,
    )


# --- the middleware on its own, over raw ASGI: what it reads ------------------------------------------------------


def _call(service: FastAPI, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """POST to the service over ASGI; return the status and how many body chunks were read."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": AGG,
        "raw_path": AGG.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(service(scope, receive, send))
    return sent[0]["status"], read


def _chunks(size: int = 1000, count: int = 100) -> list[bytes]:
    """A body of ``count`` chunks (100 KB by default), far over the limit."""
    return [b"[" * size] * count


def test_a_too_large_content_length_is_refused_without_reading_the_body(app: bootstrap.App) -> None:
    service = create_app(app)
    status, read = _call(service, [(b"content-length", str(LIMIT + 1).encode())], _chunks())
    assert (status, read) == (413, 0)
    status, read = _call(service, [(b"content-length", b"9" * 5000)], _chunks())
    assert (status, read) == (413, 0)


def test_a_chunked_body_stops_being_read_once_over_the_limit(app: bootstrap.App) -> None:
    status, read = _call(create_app(app), [(b"transfer-encoding", b"chunked")], _chunks())
    assert status == 413
    assert read == LIMIT // 1000 + 1  # the chunk that passed the limit is the last one read


def test_the_limits_cost_microseconds_per_request() -> None:
    """The middleware adds one read and one join to a request: measured here against a bare ASGI app."""

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    body = b"{" + b" " * 2000 + b"}"

    def per_request(asgi: Any, n: int = 5000) -> float:
        async def run() -> float:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(_message: Any) -> None:
                return None

            scope = {"type": "http", "headers": [(b"content-type", b"application/json")]}
            start = time.perf_counter()
            for _ in range(n):
                await asgi(scope, receive, send)
            return (time.perf_counter() - start) / n

        return asyncio.run(run())

    extra = per_request(RequestLimits(bare, ApiSettings(max_body_bytes=LIMIT, max_list_items=1000))) - per_request(bare)
    assert extra < 50e-6  # a request through the API costs milliseconds


# --- Content-Type ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
def test_a_body_is_parsed_as_json_whatever_its_content_type(api: Api, content_type: str) -> None:
    body = b'{"request": {"groupId": "nope", "activityId": "a", "activityType": "Course"}}'
    response = api.as_user("u-1").call("POST", AGG, content=body, headers={"content-type": content_type})
    error(response, 404, "GROUP_NOT_FOUND")  # read as the JSON it is, not as an empty body


def test_a_body_without_content_type_is_parsed_as_json(api: Api) -> None:
    body = b'{"request": {"groupId": "nope", "activityId": "a", "activityType": "Course"}}'
    error(api.as_user("u-1").call("POST", AGG, content=body), 404, "GROUP_NOT_FOUND")


# --- list lengths at every depth --------------------------------------------------------------------------------


@pytest.mark.parametrize("body_limit", [None, 16 << 20])
def test_a_million_course_ids_are_refused(database_url: str, clock: Any, body_limit: int | None) -> None:
    settings = Settings(database_url=database_url, api={"max_body_bytes": body_limit or 1 << 20})
    app = bootstrap.build(settings, clock=clock)
    try:
        with TestClient(create_app(app), raise_server_exceptions=False) as client:
            api = Api(client, app, client.app.state.token_keys)  # type: ignore[attr-defined]
            request = {"courseIds": ["c"] * 1_000_000, "batchId": "b"}
            response = api.as_user("u-1").post(READ, request)
            if body_limit is None:  # the default limit already refuses the body (about 4 MB)
                error(response, 413, "REQUEST_TOO_LARGE", "Request body exceeds 1048576 bytes.")
            else:
                message = "Invalid value 1000000 items (at most 1000) for parameter courseIds."
                error(response, 400, "INVALID_PARAMETER_VALUE", message + " Please provide a valid value.")
    finally:
        app.close()


def test_lists_are_bounded_by_the_setting(api: Api) -> None:
    response = api.as_user("u-1").post(READ, {"courseIds": ["c"] * (ITEMS + 1), "batchId": "b"})
    error(response, 400, "INVALID_PARAMETER_VALUE", _too_many("courseIds", ITEMS + 1))


def test_lists_inside_list_items_are_bounded_too(api: Api) -> None:
    roles = ["PUBLIC"] * (ITEMS + 1)
    response = api.as_admin().post("/v1/user/load", {"users": [{"id": "u-1", "roles": roles}]})
    error(response, 400, "INVALID_PARAMETER_VALUE", _too_many("users.roles", ITEMS + 1))
    members = {"add": [{"userId": f"u-{i}"} for i in range(ITEMS + 1)]}
    response = api.as_user("u-1").patch("/v1/group/update", {"groupId": "g", "members": members})
    error(response, 400, "INVALID_PARAMETER_VALUE", _too_many("members.add", ITEMS + 1))
    response = api.as_user("u-1").patch("/v1/group/update", {"groupId": "g", "activities": {"remove": ["a"] * 11}})
    error(response, 400, "INVALID_PARAMETER_VALUE", _too_many("activities.remove", ITEMS + 1))


def test_lists_at_the_limit_are_accepted(api: Api) -> None:
    create_user(api, "u-1", roles=["PUBLIC"] * ITEMS)
    ok(api.as_user("u-1").post(READ, {"courseIds": ["c"] * ITEMS, "batchId": "b"}))


def _too_many(name: str, count: int) -> str:
    return f"Invalid value {count} items (at most {ITEMS}) for parameter {name}. Please provide a valid value."


# --- bodies the JSON decoder gives up on ------------------------------------------------------------------------

UNDECODABLE = [
    b"[" * 500_000,
    b'{"request": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"request": {"n": ' + b"1" * 5000 + b"}}",
]


@pytest.mark.parametrize("body", UNDECODABLE, ids=["deep-unclosed", "deep", "5000-digits"])
def test_a_body_too_deep_or_with_a_giant_number_is_a_client_error(database_url: str, clock: Any, body: bytes) -> None:
    app = bootstrap.build(Settings(database_url=database_url), clock=clock)
    try:
        with TestClient(create_app(app), raise_server_exceptions=False) as client:
            api = Api(client, app, client.app.state.token_keys)  # type: ignore[attr-defined]
            error(api.as_user("u-1").call("POST", AGG, content=body), 400, "INVALID_REQUESTED_DATA")
            response = api.as_user("u-1").call("POST", "/v1/dataset/request/submit", content=body)
            assert response.status_code == 400, response.text
            assert response.json()["params"]["errmsg"] == "Invalid request body: not JSON"
    finally:
        app.close()
