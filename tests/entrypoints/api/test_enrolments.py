"""Enrolment API (SPEC §2.3, §5.9): enrol, unenrol (every refusal, reactivation) and the enrolment list."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from learnagg.adapters.store.tables import user_activity_agg, user_enrolments
from tests.entrypoints.api.support import Api, create_batch, create_user, enrol, error, ok
from tests.support import course, load

ue = user_enrolments
T = 1_700_000_000_000  # 2023-11-14 UTC


@pytest.fixture
def api_data(api: Api) -> Api:
    """A course with an ongoing batch `b-1` and batches that refuse enrolment for each reason."""
    load(api.app, course("do_c1", ["do_l1", "do_l2"]))
    create_batch(api, "do_c1", "b-1")
    create_batch(api, "do_c1", "b-2")
    create_batch(api, "do_c1", "b-ended", status=2)
    create_batch(api, "do_c1", "b-past-end", status=1, endDate="2023-11-13")
    create_batch(api, "do_c1", "b-enrol-ended", status=1, enrollmentEndDate="2023-11-13")
    return api


def row(api: Api, user: str, batch: str = "b-1") -> dict[str, Any] | None:
    stmt = select(ue).where(ue.c.userid == user, ue.c.batchid == batch)
    with api.app.store.read() as conn:
        found = conn.execute(stmt).mappings().first()
    return dict(found) if found else None


def set_row(api: Api, user: str, batch: str = "b-1", **values: Any) -> None:
    with api.app.store.write() as conn:
        conn.execute(ue.update().where(ue.c.userid == user, ue.c.batchid == batch).values(**values))


def req(batch: str = "b-1", **extra: Any) -> dict[str, Any]:
    return {"courseId": "do_c1", "batchId": batch, **extra}


def test_enrol_creates_an_active_row_for_the_caller(api_data: Api) -> None:
    body = api_data.as_user("u-1").post("/v1/course/enrol", req()).json()
    assert body["id"] == "api.course.enrol" and body["result"] == {"response": "SUCCESS"}
    r = row(api_data, "u-1")
    assert r is not None
    assert (r["courseid"], r["active"], r["status"], r["progress"], r["enrolled_date"], r["addedby"]) == (
        "do_c1",
        True,
        0,
        0,
        T,
        "u-1",
    )
    assert r["enrolleddate"] == "2023-11-14 22:13:20:000+0000"


def test_enrol_refusals(api_data: Api) -> None:
    u1 = api_data.as_user("u-1")
    ok(u1.post("/v1/course/enrol", req()))
    cases = [
        (req(), 400, "USER_ALREADY_ENROLLED_COURSE", "User has already enrolled this course."),
        (req("b-ended"), 400, "BATCH_ENDED", "Batch has ended."),
        (req("b-past-end"), 400, "BATCH_ENDED", "Batch has ended."),
        (req("b-enrol-ended"), 400, "ENROLLMENT_ENDED", "Enrollment period has ended."),
        (req("nope"), 404, "BATCH_NOT_FOUND", "Batch does not exist."),
        ({"courseId": "do_c2", "batchId": "b-1"}, 404, "BATCH_NOT_FOUND", None),
        ({"batchId": "b-1"}, 400, "COURSE_ID_REQUIRED_ERROR", "Course id is mandatory."),
        ({"courseId": "do_c1", "batchId": ""}, 400, "COURSE_BATCH_ID_MISSING", "Course batch Id required"),
        (req(userId=7), 400, "DATA_TYPE_ERROR", "Data type of userId should be String"),
        (req(userId="u-2"), 403, "UNAUTHORIZED_USER", "You are not authorized."),
    ]
    for request, status, code, message in cases:
        error(u1.post("/v1/course/enrol", request), status, code, message)
    error(api_data.post("/v1/course/enrol", req()), 401, "UNAUTHORIZED_USER")


def test_a_blank_user_id_means_the_caller(api_data: Api) -> None:
    ok(api_data.as_user("u-1").post("/v1/course/enrol", req(userId=" ")))
    assert row(api_data, "u-1") is not None


def test_an_admin_enrols_another_user(api_data: Api) -> None:
    ok(api_data.as_admin().post("/v1/course/enrol", req(userId="u-2")))
    r = row(api_data, "u-2")
    assert r is not None and r["active"] and r["addedby"] == "admin-1"


def test_a_manager_enrols_the_managed_user_by_default(api_data: Api) -> None:
    create_user(api_data, "child", managedBy="parent")
    ok(api_data.as_user("parent").post("/v1/course/enrol", req(), headers={"x-authenticated-for": "child"}))
    r = row(api_data, "child")
    assert r is not None and r["addedby"] == "parent"
    assert row(api_data, "parent") is None


def test_unenrol_sets_inactive_and_keeps_everything_else(api_data: Api) -> None:
    enrol(api_data, "u-1", "do_c1", "b-1")
    set_row(api_data, "u-1", status=1, progress=1, contentstatus={"do_l1": 2})
    agg = {"activity_type": "Course", "activity_id": "do_c1", "user_id": "u-1", "context_id": "cb:b-1"}
    with api_data.app.store.write() as conn:
        conn.execute(user_activity_agg.insert(), [{**agg, "aggregates": {"completedCount": 1.0}}])
    before = row(api_data, "u-1")
    body = api_data.as_user("u-1").post("/v1/course/unenrol", req()).json()
    assert body["id"] == "api.course.unenrol" and body["result"] == {"response": "SUCCESS"}
    assert row(api_data, "u-1") == {**before, "active": False}  # type: ignore[dict-item]
    with api_data.app.store.read() as conn:
        assert conn.execute(select(user_activity_agg.c.aggregates)).scalar_one() == {"completedCount": 1.0}


def test_unenrol_refusals(api_data: Api) -> None:
    u1 = api_data.as_user("u-1")
    error(u1.post("/v1/course/unenrol", req()), 400, "USER_NOT_ENROLLED_COURSE", "User is not enrolled in this course.")
    enrol(api_data, "u-1", "do_c1", "b-1")
    ok(u1.post("/v1/course/unenrol", req()))
    error(u1.post("/v1/course/unenrol", req()), 400, "USER_NOT_ENROLLED_COURSE")  # inactive row

    enrol(api_data, "u-1", "do_c1", "b-2")
    set_row(api_data, "u-1", "b-2", status=2)
    error(
        u1.post("/v1/course/unenrol", req("b-2")),
        400,
        "USER_ALREADY_COMPLETED_COURSE",
        "User has already completed this course.",
    )
    set_row(api_data, "u-1", "b-2", status=1)
    ok(api_data.as_admin().patch("/v1/course/batch/update", {"courseId": "do_c1", "batchId": "b-2", "status": 2}))
    error(u1.post("/v1/course/unenrol", req("b-2")), 400, "BATCH_ENDED", "Batch has ended.")
    error(u1.post("/v1/course/unenrol", req("nope")), 404, "BATCH_NOT_FOUND")
    error(u1.post("/v1/course/unenrol", req(userId="u-2")), 403, "UNAUTHORIZED_USER")
    error(api_data.post("/v1/course/unenrol", req()), 401, "UNAUTHORIZED_USER")


def test_re_enrolment_reactivates_and_keeps_status_and_progress(api_data: Api) -> None:
    enrol(api_data, "u-1", "do_c1", "b-1")
    set_row(api_data, "u-1", status=1, progress=1)
    ok(api_data.as_user("u-1").post("/v1/course/unenrol", req()))
    api_data.app.clock.now += 60_000  # type: ignore[attr-defined]
    ok(api_data.as_user("u-1").post("/v1/course/enrol", req()))
    r = row(api_data, "u-1")
    assert r is not None
    assert (r["active"], r["status"], r["progress"], r["enrolled_date"], r["addedby"]) == (True, 1, 1, T, "u-1")


def test_enrolment_list_shows_active_enrolments_sorted(api_data: Api) -> None:
    enrol(api_data, "u-1", "do_c1", "b-2")
    enrol(api_data, "u-1", "do_c1", "b-1")
    enrol(api_data, "u-2", "do_c1", "b-1")
    body = api_data.as_user("u-1").post("/v1/course/enrolment/list", {}).json()
    assert body["id"] == "api.course.enrolment.list"
    courses = body["result"]["courses"]
    assert [c["batchId"] for c in courses] == ["b-1", "b-2"]
    assert courses[0] == {
        "userId": "u-1",
        "courseId": "do_c1",
        "batchId": "b-1",
        "active": True,
        "status": 0,
        "progress": 0,
        "enrolledDate": T,
        "completedOn": None,
        "addedBy": "admin-1",
        "lastReadContentId": None,
        "lastReadContentStatus": None,
        "lastContentAccessTime": None,
        "certStatus": None,
        "contentStatus": {},
        "issuedCertificates": [],
    }
    ok(api_data.as_user("u-1").post("/v1/course/unenrol", req("b-2")))
    assert [c["batchId"] for c in ok(api_data.as_user("u-1").post("/v1/course/enrolment/list", {}))["courses"]] == [
        "b-1"
    ]
    assert len(ok(api_data.as_admin().post("/v1/course/enrolment/list", {"userId": "u-2"}))["courses"]) == 1


def test_enrolment_list_of_another_user_needs_an_admin(api_data: Api) -> None:
    error(api_data.as_user("u-1").post("/v1/course/enrolment/list", {"userId": "u-2"}), 403, "UNAUTHORIZED_USER")
    error(api_data.as_user("u-1").post("/v1/course/enrolment/list", {"userId": 1}), 400, "DATA_TYPE_ERROR")
    error(api_data.post("/v1/course/enrolment/list", {}), 401, "UNAUTHORIZED_USER")
