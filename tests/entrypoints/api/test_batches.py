"""Course batch API (SPEC §2.3, §5.9): create, update and read; default status; dates `yyyy-MM-dd`."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from learnagg.adapters.store.tables import course_batch
from tests.entrypoints.api.support import Api, create_batch, error, ok
from tests.support import course, load

# T (the test clock) is 2023-11-14 22:13:20 UTC, i.e. 2023-11-15 03:43:20 in Asia/Kolkata.
TEMPLATE = {
    "identifier": "t-1",
    "name": "Completion",
    "criteria": {"enrollment": {"status": 2}},
    "issuer": {"name": "Org"},
    "signatoryList": [],
}


@pytest.fixture
def admin(api: Api) -> Api:
    load(api.app, course("do_c1", ["do_l1"]))
    return api.as_admin()


def batch_create(admin: Api, **fields: object) -> dict:
    request = {"courseId": "do_c1", "name": "Batch", "startDate": "2023-11-01", **fields}
    return ok(admin.post("/v1/course/batch/create", request))


def test_create_then_read_every_field(admin: Api) -> None:
    request = {
        "courseId": "do_c1",
        "batchId": "b-1",
        "name": "Autumn",
        "description": "First run",
        "startDate": "2023-11-01",
        "endDate": "2023-12-31",
        "enrollmentEndDate": "2023-11-30",
        "enrollmentType": "invite-only",
        "certTemplates": {"t-1": TEMPLATE},
        "createdFor": ["o-1"],
        "mentors": ["m-1"],
    }
    body = admin.post("/v1/course/batch/create", request).json()
    assert body["id"] == "api.course.batch.create" and body["result"] == {"batchId": "b-1"}
    body = admin.as_user("u-1").get("/v1/course/batch/read/b-1").json()
    assert body["id"] == "api.course.batch.read"
    assert body["result"] == {
        "batchId": "b-1",
        "courseId": "do_c1",
        "name": "Autumn",
        "description": "First run",
        "status": 1,
        "enrollmentType": "invite-only",
        "startDate": "2023-11-01",
        "endDate": "2023-12-31",
        "enrollmentEndDate": "2023-11-30",
        "createdBy": "admin-1",
        "createdDate": admin.app.clock(),
        "updatedDate": admin.app.clock(),
        "createdFor": ["o-1"],
        "mentors": ["m-1"],
        # SPEC §2.3: every template field is text; objects and arrays are stored as JSON text.
        "certTemplates": {
            "t-1": {
                "identifier": "t-1",
                "name": "Completion",
                "criteria": '{"enrollment":{"status":2}}',
                "issuer": '{"name":"Org"}',
                "signatoryList": "[]",
            }
        },
    }


def test_dates_are_stored_as_the_start_of_the_day(admin: Api) -> None:
    batch_create(admin, batchId="b-1", startDate="2023-11-01", endDate="2023-11-30")
    with admin.app.store.read() as conn:
        row = conn.execute(select(course_batch).where(course_batch.c.batchid == "b-1")).mappings().one()
    assert (row["start_date"], row["end_date"], row["enrollment_enddate"]) == (
        1_698_796_800_000,
        1_701_302_400_000,
        None,
    )
    assert (row["enrollmenttype"], row["createdby"]) == ("open", "admin-1")


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2023-11-15", None, 0),  # starts after today
        ("2023-11-14", None, 1),  # starts today
        ("2023-11-01", "2023-11-14", 1),  # ends today
        ("2023-11-01", "2023-11-13", 2),  # ended before today
    ],
)
def test_default_status_follows_the_dates(admin: Api, start: str, end: str | None, status: int) -> None:
    batch_id = batch_create(admin, startDate=start, endDate=end)["batchId"]
    assert ok(admin.get(f"/v1/course/batch/read/{batch_id}"))["status"] == status


def test_default_status_uses_the_timezone_setting(admin: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin.app.settings, "timezone", "Asia/Kolkata")
    batch_create(admin, batchId="b-ist", startDate="2023-11-15")
    assert ok(admin.get("/v1/course/batch/read/b-ist"))["status"] == 1  # already the 15th in Kolkata


def test_explicit_status_wins_and_batch_id_defaults_to_a_uuid4(admin: Api) -> None:
    batch_id = batch_create(admin, startDate="2030-01-01", status=2)["batchId"]
    assert uuid.UUID(batch_id).version == 4
    assert ok(admin.get(f"/v1/course/batch/read/{batch_id}"))["status"] == 2


def test_create_refusals(admin: Api, api: Api) -> None:
    create_batch(api, "do_c1", "b-1")
    base = {"courseId": "do_c1", "name": "Batch", "startDate": "2023-11-01"}
    date_error = ("DATE_FORMAT_ERRROR", "Date format error.")
    cases = [
        ({**base, "courseId": " "}, "COURSE_ID_REQUIRED_ERROR", "Course id is mandatory."),
        ({**base, "name": ""}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter name is missing."),
        ({**base, "startDate": None}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter startDate is missing."),
        ({**base, "startDate": "14-11-2023"}, *date_error),
        ({**base, "startDate": "2023-02-30"}, *date_error),
        ({**base, "endDate": "2023/12/01"}, *date_error),
        ({**base, "enrollmentEndDate": "tomorrow"}, *date_error),
        ({**base, "startDate": 20231101}, "DATA_TYPE_ERROR", "Data type of startDate should be String"),
        ({**base, "enrollmentType": "closed"}, "INVALID_PARAMETER_VALUE", None),
        ({**base, "status": 3}, "INVALID_PARAMETER_VALUE", None),
        ({**base, "status": True}, "DATA_TYPE_ERROR", None),
        ({**base, "certTemplates": {"t": "x"}}, "DATA_TYPE_ERROR", "Data type of certTemplates should be Map"),
        (
            {**base, "endDate": "2023-10-01"},
            "INVALID_PARAMETER_VALUE",
            "Invalid value 2023-10-01 for parameter endDate. Please provide a valid value.",
        ),
        ({**base, "enrollmentEndDate": "2023-10-01"}, "INVALID_PARAMETER_VALUE", None),
        (
            {**base, "batchId": "b-1"},
            "INVALID_PARAMETER_VALUE",
            "Invalid value b-1 for parameter batchId. Please provide a valid value.",
        ),
    ]
    for request, code, message in cases:
        error(admin.post("/v1/course/batch/create", request), 400, code, message)
    error(admin.post("/v1/course/batch/create", {**base, "courseId": "nope"}), 404, "COURSE_NOT_FOUND")
    error(api.as_user("u-1").post("/v1/course/batch/create", base), 403, "UNAUTHORIZED_USER")
    error(api.post("/v1/course/batch/create", base), 401, "UNAUTHORIZED_USER")


def test_batch_id_is_unique_across_courses(admin: Api, api: Api) -> None:
    load(api.app, course("do_c2", ["do_l1"]))
    create_batch(api, "do_c1", "b-1")
    request = {"courseId": "do_c2", "batchId": "b-1", "name": "B", "startDate": "2023-11-01"}
    error(admin.post("/v1/course/batch/create", request), 400, "INVALID_PARAMETER_VALUE")


def test_update_sets_the_given_fields(admin: Api, api: Api) -> None:
    batch_create(admin, batchId="b-1", endDate="2023-12-31", certTemplates={"t-1": {"name": "old"}})
    admin.app.clock.now += 1000  # type: ignore[attr-defined]
    request = {
        "courseId": "do_c1",
        "batchId": "b-1",
        "name": "Renamed",
        "status": 2,
        "endDate": "2024-01-31",
        "certTemplates": {"t-2": {"name": "new", "criteria": {"user": {"rootOrgId": "o1"}}}},
    }
    body = admin.patch("/v1/course/batch/update", request).json()
    assert body["id"] == "api.course.batch.update" and body["result"] == {"response": "SUCCESS"}
    batch = ok(admin.get("/v1/course/batch/read/b-1"))
    assert (batch["name"], batch["status"], batch["endDate"], batch["startDate"]) == (
        "Renamed",
        2,
        "2024-01-31",
        "2023-11-01",
    )
    assert batch["certTemplates"] == {"t-2": {"name": "new", "criteria": '{"user":{"rootOrgId":"o1"}}'}}
    assert batch["updatedDate"] == batch["createdDate"] + 1000
    ok(admin.patch("/v1/course/batch/update", {"courseId": "do_c1", "batchId": "b-1", "endDate": None}))
    assert ok(admin.get("/v1/course/batch/read/b-1"))["endDate"] is None


def test_update_refusals(admin: Api, api: Api) -> None:
    create_batch(api, "do_c1", "b-1")
    key = {"courseId": "do_c1", "batchId": "b-1"}
    error(admin.patch("/v1/course/batch/update", {"batchId": "b-1"}), 400, "COURSE_ID_REQUIRED_ERROR")
    error(
        admin.patch("/v1/course/batch/update", {"courseId": "do_c1"}),
        400,
        "COURSE_BATCH_ID_MISSING",
        "Course batch Id required",
    )
    error(admin.patch("/v1/course/batch/update", {**key, "endDate": "31-12-2023"}), 400, "DATE_FORMAT_ERRROR")
    error(admin.patch("/v1/course/batch/update", {**key, "endDate": "2022-01-01"}), 400, "INVALID_PARAMETER_VALUE")
    error(admin.patch("/v1/course/batch/update", {**key, "status": 9}), 400, "INVALID_PARAMETER_VALUE")
    error(admin.patch("/v1/course/batch/update", {**key, "name": " "}), 400, "MANDATORY_PARAMETER_MISSING")
    missing = {"courseId": "do_c2", "batchId": "b-1"}  # the batch belongs to another course
    error(admin.patch("/v1/course/batch/update", missing), 404, "BATCH_NOT_FOUND", "Batch does not exist.")
    error(api.as_user("u-1").patch("/v1/course/batch/update", key), 403, "UNAUTHORIZED_USER")


def test_read_refusals(api: Api) -> None:
    error(api.get("/v1/course/batch/read/b-1"), 401, "UNAUTHORIZED_USER")
    error(api.as_user("u-1").get("/v1/course/batch/read/b-1"), 404, "BATCH_NOT_FOUND", "Batch does not exist.")
