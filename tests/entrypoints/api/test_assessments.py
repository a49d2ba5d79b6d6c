"""SPEC §5.8 through HTTP, on SQLite and PostgreSQL: assess save, submit and read."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import T
from tests.entrypoints.api.support import Api, error, ok
from tests.entrypoints.api.test_content_state import (
    add_attempt,
    add_batch,
    add_course_row,
    add_user,
    consumption,
    with_settings,
)
from tests.support import activity_rows, attempts, course, drain, golden_event, load, topic_events

C, B, U = "do_c1", "b-1", "u-1"
A1, A2 = "do_a1", "do_a2"
SAVE, SUBMIT, READ = "/v1/assess/save", "/v1/assess/submit", "/v1/assess/read"
CSTATE = "/v1/content/state/read"


def answer(qid: str, score: float, ets: int = 10, actor: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {"eid": "ASSESS", "ets": ets, "edata": {"score": score, "item": {"id": qid, "maxscore": 1}}}
    if actor is not None:
        event["actor"] = actor
    return event


def item(attempt_id: str = "at-1", content_id: str = A1, **kw: Any) -> dict[str, Any]:
    return {
        "assessmentTs": T - 5,
        "courseId": C,
        "batchId": B,
        "contentId": content_id,
        "attemptId": attempt_id,
        "events": [answer("q1", 1.0, actor={"id": "x", "type": "User"}), answer("q2", 0.5)],
        **kw,
    }


def without(values: dict[str, Any], *names: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in values.items() if k not in names}, **changes}


@pytest.fixture
def ready(api: Api) -> Api:
    """Course C with leaves A1 and A2, ongoing batch B; acting as U."""
    load(api.app, course(C, [A1, A2]))
    add_batch(api.app)
    return api.as_user(U)


# --- validation ---


@pytest.mark.parametrize("path", [SAVE, SUBMIT, READ])
def test_requires_an_identity(api: Api, path: str):
    error(api.post(path, {"assessments": [item()]}), 401, "UNAUTHORIZED_USER", "You are not authorized.")


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        ({}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter assessments is missing."),
        ({"assessments": []}, "MANDATORY_PARAMETER_MISSING", "Mandatory parameter assessments is missing."),
        ({"assessments": {}}, "DATA_TYPE_ERROR", "Data type of assessments should be List"),
        ({"assessments": [without(item(), "assessmentTs", "courseId")]}, "ATTEMPTED_DATE_REQUIRED", None),
        ({"assessments": [without(item(), "courseId", "contentId")]}, "COURSE_ID_REQUIRED_ERROR", None),
        ({"assessments": [without(item(), "contentId", "batchId")]}, "CONTENT_ID_REQUIRED_ERROR", None),
        ({"assessments": [without(item(), "batchId", "attemptId")]}, "COURSE_BATCH_ID_MISSING", None),
        ({"assessments": [without(item(), "attemptId", "events")]}, "ATTEMPT_ID_REQUIRED_ERROR", None),
        ({"assessments": [without(item(), "events")]}, "EVENTS_DATA_MISSING", "Events array is mandatory"),
        ({"assessments": [item(), item(events=[])]}, "EVENTS_DATA_MISSING", None),
        ({"assessments": [item(contentId=7)]}, "DATA_TYPE_ERROR", "Data type of contentId should be String"),
        (
            {"assessments": [without(item(), "batchId", contextId=7)]},
            "DATA_TYPE_ERROR",
            "Data type of contextId should be String",
        ),
    ],
)
def test_send_validation_in_spec_order(api: Api, request_, code, message):
    for path in (SAVE, SUBMIT):
        error(api.as_user(U).post(path, request_), 400, code, message)


def test_send_user_id_is_not_required_it_is_the_subject(ready: Api):
    result = ok(ready.post(SAVE, {"assessments": [without(item(), "courseId", collectionId=C, userId=None)]}))
    assert result["assessments"][0]["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"batchId": B}, "Mandatory parameter courseId is missing."),
        ({"courseId": C}, "Mandatory parameter batchId is missing."),
        ({"collectionId": " ", "contextId": B}, "Mandatory parameter courseId is missing."),
    ],
)
def test_read_validation(api: Api, request_, message):
    error(api.as_user(U).post(READ, request_), 400, "MANDATORY_PARAMETER_MISSING", message)


# --- save and submit: item checks ---


def test_item_checks_in_order(ready: Api):
    add_batch(ready.app, "b-ended", status=2)
    load(
        ready.app,
        {
            "identifier": "do_q",
            "mimeType": "application/vnd.ekstep.content-collection",
            "children": [
                {"identifier": "do_two", "mimeType": "application/pdf", "totalQuestions": 1},
            ],
        },
    )
    add_batch(ready.app, "b-q", course_id="do_q")
    request = {
        "assessments": [
            item("at-1"),
            item("at-2", batchId="b-none"),
            item("at-3", batchId="b-ended"),
            item("at-4", events=[{"eid": "ASSESS", "ets": "late"}]),
            item("at-5", contentId="do_not_a_leaf"),
            item("at-6", courseId="do_q", batchId="b-q", contentId="do_two"),
            item("at-7", batchId="b-none", contentId="do_not_a_leaf"),  # the batch check comes first
        ]
    }
    result = ok(ready.post(SAVE, request))
    assert result == {
        "assessments": [
            {"contentId": A1, "attemptId": "at-1", "batchId": B, "status": "SUBMITTED"},
            {"contentId": A1, "attemptId": "at-2", "batchId": "b-none", "status": "BATCH_NOT_EXISTS"},
            {"contentId": A1, "attemptId": "at-3", "batchId": "b-ended", "status": "NOT_A_ON_GOING_BATCH"},
            {
                "contentId": A1,
                "attemptId": "at-4",
                "batchId": B,
                "status": "INVALID",
                "message": "events[0].ets must be an integer",
            },
            {
                "contentId": "do_not_a_leaf",
                "attemptId": "at-5",
                "batchId": B,
                "status": "INVALID",
                "message": f"contentId do_not_a_leaf is not a leaf node of course {C}",
            },
            {
                "contentId": "do_two",
                "attemptId": "at-6",
                "batchId": "b-q",
                "status": "INVALID",
                "message": "question count 2 exceeds totalQuestions 1 for content do_two",
            },
            {"contentId": "do_not_a_leaf", "attemptId": "at-7", "batchId": "b-none", "status": "BATCH_NOT_EXISTS"},
        ]
    }
    [published] = topic_events(ready.app, "assess")
    assert published["attemptId"] == "at-1"


def test_unknown_course_leaves_are_fail_open_unless_strict(ready: Api):
    add_batch(ready.app, "b-x", course_id="do_unknown")
    request = {"assessments": [item(courseId="do_unknown", batchId="b-x")]}
    assert ok(ready.post(SAVE, request))["assessments"][0]["status"] == "SUBMITTED"
    strict = with_settings(
        ready, assessment=ready.app.settings.assessment.model_copy(update={"strict_leaf_validation": True})
    )
    [result] = ok(strict.post(SAVE, request))["assessments"]
    assert (result["status"], result["message"]) == ("INVALID", "leaf nodes not found for course do_unknown")


def test_save_publishes_with_user_and_actors_overwritten_and_aliases_resolved(ready: Api):
    sent = without(item(), "courseId", "batchId", collectionId=C, contextId=B, userId="someone-else")
    assert ok(ready.post(SAVE, {"assessments": [sent]}))["assessments"][0]["status"] == "SUBMITTED"
    [event] = topic_events(ready.app, "assess")
    assert event["courseId"] == C and event["batchId"] == B and event["userId"] == U
    assert [e["actor"] for e in event["events"]] == [{"id": U, "type": "User"}, {"id": U}]
    assert (event["assessmentTs"], event["contentId"], event["attemptId"]) == (T - 5, A1, "at-1")
    # save neither completes the content nor writes scores
    assert consumption(ready.app) == {} and topic_events(ready.app, "progress") == []
    assert attempts(ready.app) == [] and activity_rows(ready.app) == []


def test_save_for_a_managed_user(ready: Api):
    add_user(ready.app, "child", managed_by=U)
    ok(ready.post(SAVE, {"assessments": [item()]}, headers={"x-authenticated-for": "child"}))
    [event] = topic_events(ready.app, "assess")
    assert event["userId"] == "child" and event["events"][0]["actor"]["id"] == "child"


def test_submit_completes_the_content_and_shows_the_attempt_score(ready: Api):
    request = {
        "assessments": [
            item(events=[answer("q2", 0.33), answer("q1", 0.0, 1), answer("q1", 1.0, 2)]),
            item("at-2", batchId="b-no"),
        ]
    }
    result = ok(ready.post(SUBMIT, request))
    assert result == {
        "assessments": [
            {
                "contentId": A1,
                "attemptId": "at-1",
                "batchId": B,
                "status": "SUBMITTED",
                "totalScore": 1.33,
                "totalMaxScore": 2.0,
                "grandTotal": "1.33/2.0",
            },
            {"contentId": A1, "attemptId": "at-2", "batchId": "b-no", "status": "BATCH_NOT_EXISTS"},
        ]
    }
    row = consumption(ready.app)[A1]
    assert (row["status"], row["progress"], row["last_completed_time"]) == (2, 100, T)
    [progress] = topic_events(ready.app, "progress")
    assert progress["edata"]["userId"] == U and progress["edata"]["contents"] == [{"contentId": A1, "status": 2}]
    assert len(topic_events(ready.app, "assess")) == 1
    assert attempts(ready.app) == [] and activity_rows(ready.app) == []  # APIs never write scores


def test_submit_with_nothing_valid_writes_nothing(ready: Api):
    result = ok(ready.post(SUBMIT, {"assessments": [item(batchId="b-no")]}))
    assert result["assessments"][0]["status"] == "BATCH_NOT_EXISTS"
    assert consumption(ready.app) == {} and topic_events(ready.app, "progress") == []


# --- read ---


def scored_rows(api: Api) -> None:
    question = {
        "id": "q1",
        "assess_ts": 1637740000000,
        "max_score": 1.0,
        "score": 1.0,
        "type": "mcq",
        "title": "Q",
        "description": "",
        "duration": 2.0,
        "resvalues": [{"1": "a"}],
        "params": [{"answer": "1"}],
    }
    add_attempt(api.app, "at-1", 1637740000000, 1.33, grand_total="1.33/2.0", question=[question])
    add_attempt(api.app, "at-9", 1637740000000, 2.0, content_id=A2, user_id="u-2")
    add_course_row(
        api.app,
        aggregates={"score:do_a1": 1.33, "max_score:do_a1": 2.0, "attempts_count:do_a1": 1.0, "score:do_z": 0.0},
        agg_last_updated={"score:do_a1": 1637748000000},
    )


def test_read_matches_the_spec_example(ready: Api):
    scored_rows(ready)
    result = ok(ready.post(READ, {"courseId": C, "batchId": B, "contentIds": [A1]}))
    assert result == {
        "assessments": [
            {
                "contentId": "do_a1",
                "bestScore": {"score": 1.33, "maxScore": 2.0, "attemptsCount": 1.0, "lastUpdatedOn": 1637748000000},
                "attempts": [
                    {
                        "attemptId": "at-1",
                        "lastAttemptedOn": 1637740000000,
                        "totalScore": 1.33,
                        "totalMaxScore": 2.0,
                        "grandTotal": "1.33/2.0",
                    }
                ],
            }
        ]
    }


def test_read_questions_only_when_requested(ready: Api):
    scored_rows(ready)
    result = ok(ready.post(READ, {"collectionId": C, "contextId": B, "contentIds": [A1], "fields": ["questions"]}))
    [attempt] = result["assessments"][0]["attempts"]
    assert attempt["questions"] == [
        {
            "id": "q1",
            "assessTs": 1637740000000,
            "maxScore": 1.0,
            "score": 1.0,
            "type": "mcq",
            "title": "Q",
            "description": "",
            "duration": 2.0,
            "resvalues": [{"1": "a"}],
            "params": [{"answer": "1"}],
        }
    ]


def test_read_contents_default_to_attempts_and_score_keys_sorted(ready: Api):
    scored_rows(ready)
    add_attempt(ready.app, "at-5", 1, content_id="do_b")
    result = ok(ready.post(READ, {"courseId": C, "batchId": B}))
    assert [a["contentId"] for a in result["assessments"]] == [A1, "do_b", "do_z"]
    assert result["assessments"][1]["bestScore"] is None
    assert result["assessments"][2]["attempts"] == [] and result["assessments"][2]["bestScore"]["score"] == 0.0


def test_read_named_contents_without_data_and_own_data_only(ready: Api):
    scored_rows(ready)
    result = ok(ready.post(READ, {"courseId": C, "batchId": B, "contentIds": [A2, A2]}))
    assert result == {"assessments": [{"contentId": A2, "bestScore": None, "attempts": []}]}
    assert ok(ready.post(READ, {"courseId": C, "batchId": "b-other"})) == {"assessments": []}


def test_read_newest_first_at_most_the_limit(ready: Api):
    for n in range(27):
        add_attempt(ready.app, f"at-{n:02d}", 1000 + n // 2)  # pairs share a time: lowest attempt id first
    [content] = ok(ready.post(READ, {"courseId": C, "batchId": B}))["assessments"]
    ids = [a["attemptId"] for a in content["attempts"]]
    assert len(ids) == 25 and ids[:3] == ["at-26", "at-24", "at-25"] and ids[-2:] == ["at-02", "at-03"]


# --- end to end ---


def test_submit_then_aggregate_then_read(ready: Api):
    golden = golden_event()
    course_id, batch_id, content_id = golden["courseId"], golden["batchId"], golden["contentId"]
    load(ready.app, course(course_id, [content_id]))
    add_batch(ready.app, batch_id, course_id)
    sent = {k: v for k, v in golden.items() if k != "userId"}
    [result] = ok(ready.post(SUBMIT, {"assessments": [sent]}))["assessments"]
    assert (result["status"], result["grandTotal"]) == ("SUBMITTED", "1.33/2.0")
    drain(ready.app, ["assessment-aggregator"])
    [read] = ok(ready.post(READ, {"courseId": course_id, "batchId": batch_id}))["assessments"]
    best = {"score": 1.33, "maxScore": 2.0, "attemptsCount": 1.0, "lastUpdatedOn": T}
    assert read == {
        "contentId": content_id,
        "bestScore": best,
        "attempts": [
            {
                "attemptId": golden["attemptId"],
                "lastAttemptedOn": golden["assessmentTs"],
                "totalScore": 1.33,
                "totalMaxScore": 2.0,
                "grandTotal": "1.33/2.0",
            }
        ],
    }
    [state] = ok(ready.post(CSTATE, {"courseId": course_id, "batchId": batch_id, "fields": ["score"]}))["contentList"]
    assert (state["status"], state["progress"], state["bestScore"]) == (2, 100, best)
    assert state["score"] == [
        {
            "attemptId": golden["attemptId"],
            "lastAttemptedOn": golden["assessmentTs"],
            "totalMaxScore": 2.0,
            "totalScore": 1.33,
        }
    ]
    [row] = attempts(ready.app)
    assert row["user_id"] == U  # the subject, not the golden event's user
