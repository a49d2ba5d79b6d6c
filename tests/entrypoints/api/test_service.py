"""The service shell: envelope fields, identity (SPEC §5.1, §5.3), health, OpenAPI, unknown routes."""

from __future__ import annotations

import re

from tests.entrypoints.api.support import Api, error, ok


def test_health_reports_store_and_log(api: Api) -> None:
    result = ok(api.get("/health"))
    assert result == {"healthy": True, "checks": [{"name": "store", "healthy": True}, {"name": "log", "healthy": True}]}


def test_envelope_fields(api: Api) -> None:
    body = api.get("/health", headers={"X-msgId": "m-42"}).json()
    assert list(body) == ["id", "ver", "ts", "params", "responseCode", "result"]
    assert body["id"] == "api.health" and body["ver"] == "v1"
    assert body["ts"] == "2023-11-14 22:13:20:000+0000"  # T in UTC, yyyy-MM-dd HH:mm:ss:SSSZ
    assert body["params"] == {"resmsgid": None, "msgid": "m-42", "err": None, "status": "success", "errmsg": None}


def test_msgid_is_a_new_uuid_without_header(api: Api) -> None:
    msgid = api.get("/health").json()["params"]["msgid"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", msgid)


def test_openapi_and_docs_are_served(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    assert "/health" in schema["paths"]
    assert api.get("/docs").status_code == 200


def test_unknown_route_is_an_envelope_404(api: Api) -> None:
    error(api.get("/v1/nothing/here"), 404, "RESOURCE_NOT_FOUND")


def test_nul_characters_are_refused_before_any_write(api: Api) -> None:
    body = {"request": {"groupId": "g\u0000", "activityId": "a", "activityType": "Course"}}
    error(api.as_user("u-1").call("POST", "/v1/group/activity/agg", body), 400, "INVALID_REQUESTED_DATA")


def test_malformed_json_is_a_client_error(api: Api) -> None:
    response = api.as_user("u-1").call("POST", "/v1/group/activity/agg", content=b'{"request": {')
    error(response, 400, "INVALID_REQUESTED_DATA", "Requested data for this operation is not valid.")


def test_missing_token_is_401_and_bad_token_401(api: Api) -> None:
    request = {"groupId": "g-1", "activityId": "a", "activityType": "Course"}
    error(api.post("/v1/group/activity/agg", request), 401, "UNAUTHORIZED_USER", "You are not authorized.")
    bad = {"x-authenticated-user-token": "not-a-jwt"}
    error(api.post("/v1/group/activity/agg", request, headers=bad), 401, "UNAUTHORIZED_USER")


def test_bearer_header_is_accepted_like_the_user_token(api: Api) -> None:
    token = api.keys.mint("u-1", api.app.clock())
    response = api.post(
        "/v1/group/activity/agg",
        {"groupId": "nope", "activityId": "a", "activityType": "Course"},
        headers={"Authorization": f"Bearer {token}"},
    )
    error(response, 404, "GROUP_NOT_FOUND")


def test_managed_user_must_be_managed_by_the_caller(api: Api) -> None:
    from learnagg.adapters.store.tables import users

    with api.app.store.write() as conn:
        conn.execute(users.insert(), [{"id": "child", "managed_by": "parent"}, {"id": "other", "managed_by": "x"}])
    request = {"courseId": "c", "batchId": "b"}
    parent = api.as_user("parent")
    ok(parent.post("/v1/content/state/read", request, headers={"x-authenticated-for": "child"}))
    error(
        parent.post("/v1/content/state/read", request, headers={"x-authenticated-for": "other"}),
        403,
        "UNAUTHORIZED_USER",
    )


def test_expired_token_is_refused(api: Api, clock) -> None:
    token = api.keys.mint("u-1", clock())
    request = {"groupId": "nope", "activityId": "a", "activityType": "Course"}
    headers = {"x-authenticated-user-token": token}
    error(api.post("/v1/group/activity/agg", request, headers=headers), 404, "GROUP_NOT_FOUND")
    clock.now += api.app.settings.auth.token_ttl_seconds * 1000
    error(api.post("/v1/group/activity/agg", request, headers=headers), 401, "UNAUTHORIZED_USER")
