"""The OpenAPI document and its pages: a valid document, every answer typed, the token schemes, no 422 that is
never sent, Swagger UI and ReDoc served from learnagg itself, and answers that conform to the document."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from learnagg import bootstrap
from learnagg.adapters.store.tables import users
from learnagg.entrypoints.api.app import create_app
from tests.entrypoints.api import group_data
from tests.entrypoints.api.support import ADMIN, Api, ok

ERRORS = ("400", "401", "403", "404", "413")
API_PREFIXES = ("/v1/", "/dataset/", "/data/")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12  # per operation and backend, on top of the known-data cases below
CHANNEL = "conform-org"


def _document(api: Api) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def test_the_document_is_valid_openapi(api: Api) -> None:
    """openapi-spec-validator accepts the document as served."""
    validate(_document(api))  # type: ignore[arg-type]


def test_every_route_documents_its_answers_and_no_422(api: Api) -> None:
    """Each operation has a 200 with a schema; each API operation the error envelopes; no 422 anywhere (the
    service answers invalid input with a 400 envelope)."""
    document = _document(api)
    operations = _operations(document)
    assert len(operations) >= 27
    for path, method, operation in operations:
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert "422" not in responses, where
        content = responses["200"].get("content", {})
        assert content and all("schema" in media for media in content.values()), where
        if not path.startswith(API_PREFIXES):
            continue
        for status in ERRORS:
            schema = responses[status]["content"]["application/json"]["schema"]
            expected = "AnalyticsErrorEnvelope" if "/dataset/" in path else "ErrorEnvelope"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (where, status)
        if "download" not in path:
            assert content["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), where
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert '"422"' not in json.dumps(document)


def test_result_schemas_are_typed(api: Api) -> None:
    """The envelope is one generic model: `result` of a route refers to its own result model."""
    schemas = _document(api)["components"]["schemas"]
    envelope = schemas["Envelope_GroupAggResult_"]
    assert set(envelope["required"]) == {"id", "ver", "ts", "params", "responseCode", "result"}
    assert envelope["properties"]["result"] == {"$ref": "#/components/schemas/GroupAggResult"}
    metric = schemas["Metric"]["properties"]
    assert metric["value"]["type"] == "number" and set(schemas["Metric"]["required"]) == set(metric)
    error = schemas["ErrorEnvelope"]["properties"]["result"]
    assert error == {"$ref": "#/components/schemas/EmptyResult"}


def test_token_schemes_are_declared_and_work_as_pasted(api: Api) -> None:
    """`userToken` (the x-authenticated-user-token header) and `bearer`; a token sent the way Swagger UI sends
    each scheme is accepted."""
    document = _document(api)
    schemes = document["components"]["securitySchemes"]
    assert schemes["userToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-authenticated-user-token",
        "description": schemes["userToken"]["description"],
    }
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    for path, _method, operation in _operations(document):
        if path.startswith("/v1/"):
            assert {"userToken": []} in operation["security"] and {"bearer": []} in operation["security"], path
    read = document["paths"]["/v1/user/read/{userId}"]["get"]
    assert read["security"] == [{"userToken": []}, {"bearer": []}]

    group_data.spec_example(api.app)
    token = api.keys.mint("u-1", api.app.clock(), [])
    as_api_key = api.client.get("/v1/group/read/g-1", headers={schemes["userToken"]["name"]: token})
    as_bearer = api.client.get("/v1/group/read/g-1", headers={"Authorization": f"Bearer {token}"})
    assert ok(as_api_key)["id"] == ok(as_bearer)["id"] == "g-1"
    assert api.client.get("/v1/group/read/g-1").status_code == 401


ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(api: Api, page: str) -> None:
    """Swagger UI and ReDoc load their scripts and styles from this service (offline: no CDN), and each is
    served."""
    response = api.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = {a or b for a, b in ASSET.findall(response.text)}
    assert "/openapi.json" in urls
    assert not [u for u in urls if "//" in u], urls
    scripts = [u for u in urls if u.endswith((".js", ".css"))]
    assert scripts, response.text
    for url in scripts:
        asset = api.get(url)
        assert asset.status_code == 200 and len(asset.content) > 10_000, url


# --- answers conform to the document ------------------------------------------------------------------------------


def _seeded_service(app: bootstrap.App) -> tuple[Any, dict[str, str]]:
    """The service over the group example data, and a platform admin's headers (also an exhaust role holder)."""
    group_data.spec_example(app)
    with app.store.write() as conn:
        conn.execute(users.insert(), {"id": ADMIN, "root_org_id": CHANNEL, "roles": ["PLATFORM_ADMIN", "ORG_ADMIN"]})
    service = create_app(app)
    token = service.state.token_keys.mint(ADMIN, app.clock(), ["PLATFORM_ADMIN"])
    return service, {"x-authenticated-user-token": token, "X-Channel-ID": CHANNEL}


KNOWN: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/group/activity/agg", "POST", {"body": {"request": {"groupId": "g-1", "activityId": "do_c1",
                                                             "activityType": "Course", "includeAllMembers": True}}}),
    ("/v1/group/agg", "POST", {"body": {"request": {"groupId": "g-1"}}}),
    ("/v1/group/read/{groupId}", "GET", {"path_parameters": {"groupId": "g-1"}}),
    ("/v1/group/activities/{groupId}", "GET", {"path_parameters": {"groupId": "g-1"}}),
    ("/v1/group/list", "POST", {"body": {"request": {"filters": {"userId": "u-1"}}}}),
    ("/v1/user/read/{userId}", "GET", {"path_parameters": {"userId": "u-1"}}),
    ("/v1/course/hierarchy/read/{courseId}", "GET", {"path_parameters": {"courseId": "do_c1"}}),
    ("/v1/course/batch/create", "POST", {"body": {"request": {"courseId": "do_c1", "batchId": "b-9", "name": "b",
                                                              "startDate": "2021-01-01"}}}),
    ("/v1/course/batch/read/{batchId}", "GET", {"path_parameters": {"batchId": "b-9"}}),
    ("/v1/course/enrol", "POST", {"body": {"request": {"courseId": "do_c1", "batchId": "b-9", "userId": "u-2"}}}),
    ("/v1/course/enrolment/list", "POST", {"body": {"request": {"userId": "u-2"}}}),
    ("/v1/content/state/update", "PATCH", {"body": {"request": {"contents": [
        {"contentId": "do_a1", "courseId": "do_c1", "batchId": "b-9", "status": 2, "progress": 100}]}}}),
    ("/v1/content/state/read", "POST", {"body": {"request": {"courseId": "do_c1", "batchId": "b-9",
                                                             "fields": ["progress", "score"]}}}),
    ("/v1/assess/read", "POST", {"body": {"request": {"courseId": "do_c1", "batchId": "b-1",
                                                      "fields": ["questions"]}}}),
    ("/v1/dataset/request/submit", "POST", {"body": {"request": {"tag": "t", "dataset": "progress-exhaust",
                                                                 "datasetConfig": {"batchId": "b-1"}}}}),
    ("/v1/dataset/request/list/{tag}", "GET", {"path_parameters": {"tag": "t"}}),
    ("/v1/dataset/request/read/{tag}", "GET", {"path_parameters": {"tag": "t"}, "query": {"requestId": "none"}}),
]  # fmt: skip


def test_known_answers_conform_to_the_document(app: bootstrap.App) -> None:
    """Successful answers over real data (members, scores, batches, enrolments, content state, an exhaust request)
    match their documented 200 schemas."""
    service, headers = _seeded_service(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", service)
    for path, method, parts in KNOWN:
        case = schema[path][method].Case(**parts)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == 200, (path, response.text[:500])


def test_generated_answers_conform_to_the_document(app: bootstrap.App) -> None:
    """schemathesis' valid cases for every operation, sent with the admin token through the `userToken` scheme:
    every answer (success or refusal) has a documented status, media type and schema."""
    service, headers = _seeded_service(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", service)
    with TestClient(service):
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy(schemathesis.GenerationMode.POSITIVE))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def conform(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            with contextlib.suppress(Unsatisfiable):
                conform()
