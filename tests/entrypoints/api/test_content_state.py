"""SPEC §5.6 and §5.7 through HTTP, on SQLite and PostgreSQL: content state read and update."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import (
    assessment_aggregator,
    course_batch,
    user_activity_agg,
    user_content_consumption,
    user_enrolments,
    users,
)
from learnagg.entrypoints.api.app import create_app
from tests.conftest import T
from tests.entrypoints.api.support import Api, error, ok
from tests.support import topic_events

C, B, U = "do_c1", "b-1", "u-1"
A1, A2 = "do_a1", "do_a2"
TS = "2023-11-14 22:13:20:000+0000"  # T
READ, UPDATE = "/v1/content/state/read", "/v1/content/state/update"


# --- rows inserted directly (the platform-data APIs are built elsewhere) ---


def insert_rows(app: bootstrap.App, table: Table, *rows: dict[str, Any]) -> None:
    with app.store.write() as conn:
        for row in rows:  # rows may name different columns
            conn.execute(insert(table), row)


def add_batch(app: bootstrap.App, batch_id: str = B, course_id: str = C, status: int = 1) -> None:
    insert_rows(app, course_batch, {"courseid": course_id, "batchid": batch_id, "status": status})


def enrol(app: bootstrap.App, user: str = U, batch_id: str = B, course_id: str = C) -> None:
    insert_rows(app, user_enrolments, {"userid": user, "courseid": course_id, "batchid": batch_id, "active": True})


def add_user(app: bootstrap.App, user: str, managed_by: str | None = None) -> None:
    insert_rows(app, users, {"id": user, "managed_by": managed_by, "status": 1})


def add_attempt(app: bootstrap.App, attempt_id: str, ts: int | None, score: float = 1.0, **kw: Any) -> None:
    row = {
        "user_id": U,
        "course_id": C,
        "batch_id": B,
        "content_id": A1,
        "attempt_id": attempt_id,
        "last_attempted_on": ts,
        "total_score": score,
        "total_max_score": 2.0,
        "grand_total": f"{score}/2.0",
        "question": [],
        **kw,
    }
    insert_rows(app, assessment_aggregator, row)


def add_course_row(app: bootstrap.App, user: str = U, **maps: Any) -> None:
    row = {"activity_type": "Course", "activity_id": C, "user_id": user, "context_id": f"cb:{B}"}
    insert_rows(app, user_activity_agg, {**row, **maps})


def consumption(app: bootstrap.App, user: str = U) -> dict[str, dict[str, Any]]:
    t = user_content_consumption
    with app.store.read() as conn:
        return {r["contentid"]: dict(r) for r in conn.execute(select(t).where(t.c.userid == user)).mappings()}


def enrolment(app: bootstrap.App, user: str = U) -> dict[str, Any]:
    t = user_enrolments
    with app.store.read() as conn:
        return dict(conn.execute(select(t).where(t.c.userid == user)).mappings().one())


def content(content_id: str = A1, status: int = 1, **kw: Any) -> dict[str, Any]:
    return {"courseId": C, "batchId": B, "contentId": content_id, "status": status, **kw}


def with_settings(api: Api, **overrides: Any) -> Api:
    """The same database behind a service built with other settings."""
    settings = api.app.settings.model_copy(update=overrides)
    app = bootstrap.build(settings, clock=api.app.clock, store=api.app.store)
    service = create_app(app)
    return Api(TestClient(service, raise_server_exceptions=False), app, service.state.token_keys, api.user)


# --- §5.6 read: validation ---


def test_read_requires_an_identity(api: Api):
    error(api.post(READ, {"courseId": C, "batchId": B}), 401, "UNAUTHORIZED_USER", "You are not authorized.")


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        ({"courseIds": C, "contentIds": A1}, "DATA_TYPE_ERROR", "Data type of courseIds should be List"),
        ({"courseId": C, "batchId": B, "contentIds": A1}, "DATA_TYPE_ERROR", "Data type of contentIds should be List"),
        ({"contentIds": [A1]}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter courseId is missing."),
        ({"courseIds": [], "batchId": B}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter courseId is missing."),
        ({"courseId": " ", "batchId": B}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter courseId is missing."),
        ({"courseId": C, "userId": U}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter batchId is missing."),
        ({"courseId": 5, "batchId": B}, "DATA_TYPE_ERROR", "Data type of courseId should be String"),
        ({"courseId": C, "batchId": B, "fields": "score"}, "DATA_TYPE_ERROR", "Data type of fields should be List"),
    ],
)
def test_read_validation_in_spec_order(api: Api, request_, code, message):
    error(api.as_user(U).post(READ, request_), 400, code, message)


def test_read_missing_request_is_a_missing_course(api: Api):
    error(
        api.as_user(U).call("POST", READ, {}),
        400,
        "MANDATORY_PARAMETER_MISSING",
        "Mandatory parameter courseId is missing.",
    )


# --- §5.6 read: behaviour ---


def stored_rows(app: bootstrap.App) -> None:
    base = {"userid": U, "courseid": C, "batchid": B}
    insert_rows(
        app,
        user_content_consumption,
        {
            **base,
            "contentid": A2,
            "status": 1,
            "progress": 10,
            "lastaccesstime": "2021-11-24 10:15:30:123+0000",  # legacy text only
            "lastcompletedtime": " ",
        },
        {
            **base,
            "contentid": A1,
            "status": 2,
            "progress": 100,
            "viewcount": 1,
            "completedcount": 1,
            "last_access_time": T,
            "lastaccesstime": "ignored when the timestamp is set",
            "last_completed_time": T + 1,
            "last_updated_time": T + 2,
            "completionpercentage": 100.0,
            "progressdetails": '{"current": [1, 2]}',
        },
        {**base, "userid": "u-2", "contentid": A1, "status": 1},
    )


def test_read_items_keys_in_order_dates_legacy_fallback_nulls_left_out(api: Api):
    stored_rows(api.app)
    result = ok(api.as_user(U).post(READ, {"courseIds": [C, "other"], "batchId": B, "userId": "u-2"}))
    first, second = result["contentList"]
    assert list(first.items()) == [
        ("contentId", A1),
        ("courseId", C),
        ("collectionId", C),
        ("batchId", B),
        ("status", 2),
        ("progress", 100),
        ("viewCount", 1),
        ("completedCount", 1),
        ("lastAccessTime", TS),
        ("lastCompletedTime", "2023-11-14 22:13:20:001+0000"),
        ("lastUpdatedTime", "2023-11-14 22:13:20:002+0000"),
        ("completionPercentage", 100.0),
        ("progressdetails", {"current": [1, 2]}),
    ]
    assert second == {
        "contentId": A2,
        "courseId": C,
        "collectionId": C,
        "batchId": B,
        "status": 1,
        "progress": 10,
        "lastAccessTime": "2021-11-24 10:15:30:123+0000",
    }


def test_read_collection_id_content_ids_and_other_course(api: Api):
    stored_rows(api.app)
    assert [
        i["contentId"] for i in ok(api.as_user(U).post(READ, {"collectionId": C, "batchId": B}))["contentList"]
    ] == [A1, A2]
    result = ok(api.as_user(U).post(READ, {"collectionId": C, "batchId": B, "contentIds": [A2, "nope"]}))
    assert [i["contentId"] for i in result["contentList"]] == [A2]
    assert ok(api.as_user(U).post(READ, {"courseId": "other", "collectionId": C, "batchId": B})) == {"contentList": []}


def test_read_dates_in_the_configured_timezone(api: Api):
    stored_rows(api.app)
    kolkata = with_settings(api.as_user(U), timezone="Asia/Kolkata")
    [item, _] = ok(kolkata.post(READ, {"courseId": C, "batchId": B}))["contentList"]
    assert item["lastAccessTime"] == "2023-11-15 03:43:20:000+0530"


def test_read_is_own_data_only_body_user_id_ignored(api: Api):
    stored_rows(api.app)
    result = ok(api.as_user("u-2").post(READ, {"courseId": C, "batchId": B, "userId": U}))
    assert [(i["contentId"], i["status"]) for i in result["contentList"]] == [(A1, 1)]


def test_read_for_a_managed_user(api: Api):
    stored_rows(api.app)
    add_user(api.app, "u-2", managed_by="parent")
    result = ok(api.as_user("parent").post(READ, {"courseId": C, "batchId": B}, headers={"x-authenticated-for": "u-2"}))
    assert [i["contentId"] for i in result["contentList"]] == [A1]
    denied = api.as_user("stranger").post(READ, {"courseId": C, "batchId": B}, headers={"x-authenticated-for": "u-2"})
    error(denied, 403, "UNAUTHORIZED_USER")


def test_read_scores_newest_first_tie_lowest_attempt_and_best_score(api: Api):
    stored_rows(api.app)
    add_attempt(api.app, "at-1", 1637740000000, 1.33)
    add_attempt(api.app, "at-3", 1637748000000, 0.5)
    add_attempt(api.app, "at-2", 1637748000000, 1.0)
    add_attempt(api.app, "at-0", None, 0.0)
    add_attempt(api.app, "at-9", 1637749000000, 2.0, user_id="u-2")
    add_course_row(
        api.app,
        agg={"score:do_a1": 1, "max_score:do_a1": 2, "attempts_count:do_a1": 9},
        aggregates={"score:do_a1": 1.33, "attempts_count:do_a1": 4.0},
        agg_last_updated={"score:do_a1": 1637748000000},
    )
    first, second = ok(api.as_user(U).post(READ, {"courseId": C, "batchId": B, "fields": ["progress", "score"]}))[
        "contentList"
    ]
    assert first["score"] == [
        {"attemptId": "at-2", "lastAttemptedOn": 1637748000000, "totalMaxScore": 2.0, "totalScore": 1.0},
        {"attemptId": "at-3", "lastAttemptedOn": 1637748000000, "totalMaxScore": 2.0, "totalScore": 0.5},
        {"attemptId": "at-1", "lastAttemptedOn": 1637740000000, "totalMaxScore": 2.0, "totalScore": 1.33},
        {"attemptId": "at-0", "lastAttemptedOn": None, "totalMaxScore": 2.0, "totalScore": 0.0},
    ]
    # merged: agg widened, aggregates wins (SPEC §2.1, §7 #9)
    assert first["bestScore"] == {"score": 1.33, "maxScore": 2.0, "attemptsCount": 4.0, "lastUpdatedOn": 1637748000000}
    assert list(first)[-2:] == ["score", "bestScore"]
    assert second["score"] == [] and second["bestScore"] is None


def test_read_without_score_field_has_no_scores(api: Api):
    stored_rows(api.app)
    add_attempt(api.app, "at-1", 1)
    [item, _] = ok(api.as_user(U).post(READ, {"courseId": C, "batchId": B}))["contentList"]
    assert "score" not in item and "bestScore" not in item


def test_read_at_most_the_attempts_limit(api: Api):
    stored_rows(api.app)
    for n in range(27):
        add_attempt(api.app, f"at-{n:02d}", 1000 + n)
    [item, _] = ok(api.as_user(U).post(READ, {"courseId": C, "batchId": B, "fields": ["score"]}))["contentList"]
    assert [a["attemptId"] for a in item["score"]] == [f"at-{n:02d}" for n in range(26, 1, -1)]
    assert item["bestScore"] is None
    small = with_settings(
        api.as_user(U),
        assessment=api.app.settings.assessment.model_copy(
            update={"attempts": api.app.settings.assessment.attempts.model_copy(update={"limit": 2})}
        ),
    )
    [item, _] = ok(small.post(READ, {"courseId": C, "batchId": B, "fields": ["score"]}))["contentList"]
    assert [a["attemptId"] for a in item["score"]] == ["at-26", "at-25"]


# --- §5.7 update: validation ---

GOOD_ASSESSMENT = {
    "assessmentTs": T,
    "courseId": C,
    "contentId": A1,
    "batchId": B,
    "userId": U,
    "attemptId": "at-1",
    "events": [
        {"eid": "ASSESS", "ets": T, "actor": {"id": "someone", "type": "User"}, "edata": {"item": {"id": "q1"}}}
    ],
}


def without(item: dict[str, Any], *names: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in item.items() if k not in names}, **changes}


@pytest.mark.parametrize(
    ("item", "code", "message"),
    [
        (content(lastAccessTime="2023-11-14", courseId=None), "DATE_FORMAT_ERRROR", "Date format error."),
        (content(lastUpdatedTime=5), "DATE_FORMAT_ERRROR", "Date format error."),
        (content(lastCompletedTime="2023-11-14 22:13:20+0000"), "DATE_FORMAT_ERRROR", "Date format error."),
        (without(content(), "courseId", "contentId"), "COURSE_ID_REQUIRED_ERROR", "Course id is mandatory."),
        (content(courseId=" ", contentId=None), "COURSE_ID_REQUIRED_ERROR", "Course id is mandatory."),
        (without(content(), "contentId", "status"), "CONTENT_ID_REQUIRED_ERROR", "Content id is mandatory."),
        (without(content(), "status", "batchId"), "CONTENT_STATUS_MISSING_ERROR", "content status is required ."),
        (without(content(), "batchId"), "COURSE_BATCH_ID_MISSING", "Course batch Id required"),
        (content(status="2"), "DATA_TYPE_ERROR", "Data type of status should be Integer"),
        (content(progress=1.5), "DATA_TYPE_ERROR", "Data type of progress should be Integer"),
        (
            content(status=2**31, batchId=None),
            "INVALID_PARAMETER_VALUE",
            "Invalid value 2147483648 for parameter status. Please provide a valid value.",
        ),
        (content(progress=-(2**31) - 1), "INVALID_PARAMETER_VALUE", None),
    ],
)
def test_update_content_item_validation_in_spec_order(api: Api, item, code, message):
    error(api.as_user(U).patch(UPDATE, {"contents": [content(), item]}), 400, code, message)


@pytest.mark.parametrize(
    ("item", "code", "message"),
    [
        (
            without(GOOD_ASSESSMENT, "assessmentTs", "courseId"),
            "ATTEMPTED_DATE_REQUIRED",
            "Attempted data is required.",
        ),
        (without(GOOD_ASSESSMENT, "courseId", "contentId"), "COURSE_ID_REQUIRED_ERROR", "Course id is mandatory."),
        (without(GOOD_ASSESSMENT, "contentId", "batchId"), "CONTENT_ID_REQUIRED_ERROR", "Content id is mandatory."),
        (without(GOOD_ASSESSMENT, "batchId", "userId"), "COURSE_BATCH_ID_MISSING", "Course batch Id required"),
        (without(GOOD_ASSESSMENT, "userId", "attemptId"), "USERID_MISSING", "UserId is mandatory."),
        (without(GOOD_ASSESSMENT, "attemptId", "events"), "ATTEMPT_ID_REQUIRED_ERROR", "Please provide attempt id."),
        (without(GOOD_ASSESSMENT, "events"), "EVENTS_DATA_MISSING", "Events array is mandatory"),
        (without(GOOD_ASSESSMENT, events=[]), "EVENTS_DATA_MISSING", "Events array is mandatory"),
        (without(GOOD_ASSESSMENT, assessmentTs="T"), "DATA_TYPE_ERROR", "Data type of assessmentTs should be Integer"),
        (without(GOOD_ASSESSMENT, events={}), "DATA_TYPE_ERROR", "Data type of events should be List"),
    ],
)
def test_update_assessment_item_validation_in_spec_order(api: Api, item, code, message):
    error(api.as_user(U).patch(UPDATE, {"assessments": [GOOD_ASSESSMENT, item]}), 400, code, message)


def test_update_content_items_are_checked_before_assessment_items(api: Api):
    request = {"assessments": [without(GOOD_ASSESSMENT, "userId")], "contents": [without(content(), "batchId")]}
    error(api.as_user(U).patch(UPDATE, request), 400, "COURSE_BATCH_ID_MISSING")


def test_update_lists_must_be_lists_of_objects(api: Api):
    error(
        api.as_user(U).patch(UPDATE, {"contents": content()}),
        400,
        "DATA_TYPE_ERROR",
        "Data type of contents should be List",
    )
    error(api.as_user(U).patch(UPDATE, {"assessments": ["x"]}), 400, "DATA_TYPE_ERROR")


def test_update_requires_an_identity(api: Api):
    error(api.patch(UPDATE, {"contents": [content()]}), 401, "UNAUTHORIZED_USER")


def test_update_nothing_to_do_is_an_empty_result(api: Api):
    assert ok(api.as_user(U).patch(UPDATE, {})) == {}


# --- §5.7 update: behaviour ---


def test_new_rows_and_result(api: Api):
    add_batch(api.app)
    request = {
        "userId": "ignored",
        "contents": [
            content(A1, 1, progress=40, lastAccessTime="2021-11-24 10:15:30:123+0000", progressdetails={"p": [1]}),
            content(A2, 3, progress=5, collectionId=C, courseId=None),
        ],
    }
    assert ok(api.as_user(U).patch(UPDATE, request)) == {A1: "SUCCESS", A2: "SUCCESS"}
    rows = consumption(api.app)
    assert {
        k: rows[A1][k] for k in ("status", "progress", "last_access_time", "last_completed_time", "last_updated_time")
    } == {
        "status": 1,
        "progress": 0,  # a new incomplete row starts at 0
        "last_access_time": 1637748930123,
        "last_completed_time": None,
        "last_updated_time": T,
    }
    assert rows[A1]["progressdetails"] == '{"p":[1]}'
    assert (rows[A1]["lastaccesstime"], rows[A1]["lastupdatedtime"]) == ("2021-11-24 10:15:30:123+0000", TS)
    assert {
        k: rows[A2][k] for k in ("status", "progress", "last_access_time", "last_completed_time", "lastcompletedtime")
    } == {
        "status": 2,
        "progress": 100,
        "last_access_time": T,
        "last_completed_time": T,
        "lastcompletedtime": TS,
    }
    assert rows[A2]["viewcount"] is None and rows[A2]["completedcount"] is None  # counted by the activity updater


def test_merge_status_never_decreases_progress_max_access_later(api: Api, clock):
    add_batch(api.app)
    base = {"userid": U, "courseid": C, "batchid": B}
    insert_rows(
        api.app,
        user_content_consumption,
        {
            **base,
            "contentid": A1,
            "status": 2,
            "progress": 100,
            "last_access_time": 50,
            "last_completed_time": 60,
            "viewcount": 3,
        },
        {**base, "contentid": A2, "status": 1, "progress": 70, "lastaccesstime": "2021-11-24 10:15:30:123+0000"},
    )
    clock.now = T + 1000
    request = {
        "contents": [content(A1, 1, progress=10, lastAccessTime=TS), content(A2, 1, progress=20), content(A2, 2)]
    }
    assert ok(api.as_user(U).patch(UPDATE, request)) == {A1: "SUCCESS", A2: "SUCCESS"}
    rows = consumption(api.app)
    assert [rows[A1][k] for k in ("status", "progress", "last_access_time", "last_completed_time", "viewcount")] == [
        2,
        100,
        T,
        60,
        3,
    ]
    assert [rows[A2][k] for k in ("status", "progress", "last_access_time", "last_completed_time")] == [
        2,
        100,
        1637748930123,
        T + 1000,
    ]
    assert rows[A2]["last_updated_time"] == T + 1000
    [event] = topic_events(api.app, "progress")
    assert event["edata"]["contents"] == [{"contentId": A1, "status": 2}, {"contentId": A2, "status": 2}]


def test_progress_event_one_per_user_and_batch_keyed_by_user(api: Api):
    add_batch(api.app)
    add_batch(api.app, "b-2")
    request = {"contents": [content(A1, 2), content(A1, 1, batchId="b-2"), content(A2, 1)]}
    ok(api.as_user(U).patch(UPDATE, request))
    first, second = topic_events(api.app, "progress")
    assert re.fullmatch(rf"LP\.{T}\.[0-9a-f-]{{36}}", first.pop("mid"))
    assert first == {
        "eid": "BE_JOB_REQUEST",
        "ets": T,
        "actor": {"id": "Course Batch Updater", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}},
        "object": {"id": f"{B}_{U}", "type": "CourseBatchEnrolment"},
        "edata": {
            "userId": U,
            "batchId": B,
            "courseId": C,
            "contents": [{"contentId": A1, "status": 2}, {"contentId": A2, "status": 1}],
            "action": "batch-enrolment-update",
            "iteration": 1,
        },
    }
    assert second["edata"]["batchId"] == "b-2" and second["edata"]["contents"] == [{"contentId": A1, "status": 1}]
    with api.app.store.read() as conn:
        assert {e.key for e in api.app.log.read(conn, api.app.topics.progress)} == {U}


def test_batch_checks(api: Api):
    add_batch(api.app)
    add_batch(api.app, "b-ended", status=2)
    add_batch(api.app, "b-upcoming", status=0)
    add_batch(api.app, "b-other-course", course_id="do_other")
    request = {
        "contents": [
            content(A1, 1, batchId="b-upcoming"),
            content(A1, 1, batchId="b-none"),
            content(A1, 1, batchId="b-other-course"),
            content(A1, 1, batchId="b-ended"),
            content(A2, 1),
        ],
        "assessments": [without(GOOD_ASSESSMENT, batchId="b-ended"), without(GOOD_ASSESSMENT, batchId="b-zzz")],
    }
    assert ok(api.as_user(U).patch(UPDATE, request)) == {
        A2: "SUCCESS",
        "BATCH_NOT_EXISTS": ["b-none", "b-other-course", "b-zzz"],
        "NOT_A_ON_GOING_BATCH": ["b-ended", "b-upcoming"],
    }
    assert list(consumption(api.app)) == [A2]
    assert topic_events(api.app, "assess") == []


def test_items_for_another_user_go_to_the_invalid_topic(api: Api):
    add_batch(api.app)
    other = content(A2, 2, userId="u-2")
    result = ok(api.as_user(U).patch(UPDATE, {"contents": [content(A1, 1, userId=U), other]}))
    assert result == {A1: "SUCCESS"}
    assert list(consumption(api.app)) == [A1] and consumption(api.app, "u-2") == {}
    [invalid] = topic_events(api.app, "contentstate.invalid")
    assert invalid == {"validUserIds": [U], "invalidContents": [other], "ets": T}
    assert [e["edata"]["contents"] for e in topic_events(api.app, "progress")] == [[{"contentId": A1, "status": 1}]]


def test_managed_user_items_belong_to_requested_for(api: Api):
    add_batch(api.app)
    add_user(api.app, "child", managed_by=U)
    request = {"contents": [content(A1, 1), content(A2, 1, userId=U)], "assessments": [GOOD_ASSESSMENT]}
    result = ok(api.as_user(U).patch(UPDATE, request, headers={"x-authenticated-for": "child"}))
    assert result == {A1: "SUCCESS", B: "SUCCESS"}
    assert list(consumption(api.app, "child")) == [A1] and consumption(api.app) == {}
    [invalid] = topic_events(api.app, "contentstate.invalid")
    assert invalid["validUserIds"] == ["child"] and invalid["invalidContents"] == [content(A2, 1, userId=U)]
    [assess] = topic_events(api.app, "assess")
    assert assess["userId"] == "child" and assess["events"][0]["actor"] == {"id": "child", "type": "User"}


def test_assessments_are_published_overwritten_and_complete_their_content(api: Api):
    add_batch(api.app)
    answer = {"eid": "ASSESS", "ets": T, "edata": {"item": {"id": "q1"}}}
    events = [answer, {**answer, "actor": "x"}]
    second = without(GOOD_ASSESSMENT, userId="u-2", attemptId="at-2", contentId=A2, events=events)
    result = ok(api.as_user(U).patch(UPDATE, {"assessments": [GOOD_ASSESSMENT, second]}))
    assert result == {A1: "SUCCESS", A2: "SUCCESS", B: "SUCCESS"}
    first, other = topic_events(api.app, "assess")
    assert first == {
        **GOOD_ASSESSMENT,
        "events": [{**GOOD_ASSESSMENT["events"][0], "actor": {"id": U, "type": "User"}}],
    }
    assert other["userId"] == U and [e["actor"] for e in other["events"]] == [{"id": U}, {"id": U}]
    rows = consumption(api.app)
    assert (rows[A1]["status"], rows[A1]["progress"], rows[A2]["status"]) == (2, 100, 2)
    [progress] = topic_events(api.app, "progress")
    assert progress["edata"]["contents"] == [{"contentId": A1, "status": 2}, {"contentId": A2, "status": 2}]
    with api.app.store.read() as conn:
        assert [e.key for e in api.app.log.read(conn, api.app.topics.assess)] == [None, None]


def test_enrolment_records_the_most_recently_accessed_content(api: Api):
    add_batch(api.app)
    add_batch(api.app, "b-2")
    enrol(api.app)
    request = {
        "contents": [
            content(A1, 2, lastAccessTime="2023-11-14 22:13:19:000+0000"),
            content(A2, 1, lastAccessTime="2021-11-24 10:15:30:123+0000"),
            content(A2, 1, batchId="b-2"),  # no enrolment in b-2: nothing is created
        ]
    }
    ok(api.as_user(U).patch(UPDATE, request))
    row = enrolment(api.app)
    assert (row["batchid"], row["lastreadcontentid"], row["lastreadcontentstatus"], row["lastcontentaccesstime"]) == (
        B,
        A1,
        2,
        T - 1000,
    )
    assert row["status"] is None  # the activity updater owns the enrolment status (SPEC P9)


def test_integers_beyond_64_bits_are_published_as_sent_in_fields_the_aggregator_ignores(api: Api):
    add_batch(api.app)
    big = 2**70
    sent = without(GOOD_ASSESSMENT, extra={"n": big})
    assert ok(api.as_user(U).patch(UPDATE, {"assessments": [sent]})) == {A1: "SUCCESS", B: "SUCCESS"}
    with api.app.store.read() as conn:
        [event] = api.app.log.read(conn, api.app.topics.assess)
    assert f'"extra":{{"n":{big}}}' in event.payload


def test_assessments_get_a1_validation_and_the_input_bounds(api: Api):
    # Regression: content-state assessments were published without any A1 check (an assessmentTs of 2**70,
    # or an answer without ets, reached the aggregator).
    add_batch(api.app)
    for sent, name, value in [
        (without(GOOD_ASSESSMENT, assessmentTs=2**70), "assessmentTs", "1180591620717411303424"),
        (without(GOOD_ASSESSMENT, events=[{"eid": "ASSESS"}]), "events[0].ets", "null (must be an integer)"),
    ]:
        body = error(
            api.as_user(U).patch(UPDATE, {"assessments": [GOOD_ASSESSMENT, sent]}), 400, "INVALID_PARAMETER_VALUE"
        )
        assert f"Invalid value {value}" in body["params"]["errmsg"]
        assert body["params"]["errmsg"].endswith(f" for parameter {name}. Please provide a valid value.")
    assert topic_events(api.app, "assess") == [] and consumption(api.app) == {}
