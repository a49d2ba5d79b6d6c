"""The service shell: envelope fields, identity (SPEC §5.1, §5.3), health, OpenAPI, unknown routes."""

from __future__ import annotations

import re

from tests.api.support import Api, error, ok


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
