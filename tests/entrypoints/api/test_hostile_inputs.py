"""Hostile values through every route that accepts attempts or content state, and through the assessment job,
on SQLite and PostgreSQL: never a server error, the bad item is refused naming the field and the rule, and a
valid attempt sent afterwards is aggregated (docs/threat-model.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from learnagg.domain.messages import issue_certificate_request, progress_event
from tests.conftest import T
from tests.entrypoints.api.support import Api, error, ok
from tests.entrypoints.api.test_content_state import add_batch, consumption
from tests.support import attempts, course, drain, load, publish, topic_events

C, B, U = "do_c1", "b-1", "u-1"
A1 = "do_a1"
SAVE, SUBMIT, UPDATE = "/v1/assess/save", "/v1/assess/submit", "/v1/content/state/update"
NUMBER = "must be a finite number with absolute value at most 1e15"
TIMESTAMP = "must be an epoch-ms timestamp between 0 and 253402300799999"
NESTED = "is nested deeper than 64 levels"
NUL = "must not contain a NUL character"


def nested(depth: int) -> Any:
    value: Any = {"text": "leaf"}
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


def answer(qid: str = "q1", score: Any = 1, **edata: Any) -> dict[str, Any]:
    body = {"score": score, "duration": 1, "item": {"id": qid, "maxscore": 1, "title": "Q"}, **edata}
    return {"eid": "ASSESS", "ets": T - 10, "edata": body}


def attempt(attempt_id: str, events: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "assessmentTs": T - 5,
        "courseId": C,
        "batchId": B,
        "contentId": A1,
        "userId": U,
        "attemptId": attempt_id,
        "events": events if events is not None else [answer()],
        **fields,
    }


def with_item(**item: Any) -> list[dict[str, Any]]:
    event = answer()
    event["edata"]["item"].update(item)
    return [event]


# (attempt, status, message): every hostile value the issue names, and more of the same kinds. NUL characters
# never reach an item: the service refuses any request body holding one (docs/api.md), tested below.
HOSTILE: list[tuple[dict[str, Any], str, str | None]] = [
    (attempt("h-score", [answer(score=1e26)]), "INVALID", f"events[0].edata.score {NUMBER}"),
    (attempt("h-inf", [answer(score="1e999")]), "INVALID", f"events[0].edata.score {NUMBER}"),
    (attempt("h-text", [answer(score="1e26")]), "INVALID", f"events[0].edata.score {NUMBER}"),
    (attempt("h-digits", [answer(score="9" * 5000)]), "INVALID", f"events[0].edata.score {NUMBER}"),
    (attempt("h-bigint", [answer(score=10**400)]), "INVALID", f"events[0].edata.score {NUMBER}"),
    (attempt("h-arabic", [answer(score="١٢")]), "INVALID", "events[0].edata.score must be numeric"),
    (attempt("h-max", with_item(maxscore=1e26)), "INVALID", f"events[0].edata.item.maxscore {NUMBER}"),
    (attempt("h-ts", assessmentTs=2**63), "INVALID", f"assessmentTs {TIMESTAMP}"),
    (attempt("h-ets", [{**answer(), "ets": 2**63}]), "INVALID", f"events[0].ets {TIMESTAMP}"),
    (attempt("h-res", [answer(resvalues=[{"a": nested(500)}])]), "INVALID", f"events[0].edata.resvalues {NESTED}"),
    (attempt("h-params", with_item(params=[{"a": nested(500)}])), "INVALID", f"events[0].edata.item.params {NESTED}"),
    (attempt("h-deep", [{**answer(), "context": nested(300)}]), "INVALID", f"events[0].context {NESTED}"),
    (
        attempt("h-many", [answer(f"q{n}") for n in range(1001)]),
        "INVALID",
        "events has 1001 answers, more than the 1000 allowed",
    ),
]


@pytest.fixture
def ready(api: Api) -> Api:
    load(api.app, course(C, [A1]))
    add_batch(api.app)
    return api.as_user(U)


def aggregated(api: Api) -> list[str]:
    drain(api.app, ["assessment-aggregator"])
    return [row["attempt_id"] for row in attempts(api.app)]


@pytest.mark.parametrize("path", [SAVE, SUBMIT])
def test_save_and_submit_refuse_hostile_attempts_and_the_valid_one_is_aggregated(ready: Api, path: str):
    # Regression: score 1e26, "1e999", 2**63 timestamps, deep nesting and NUL were SUBMITTED (or a 500), and the
    # published attempt then stopped the aggregator for every learner.
    request = {"assessments": [item for item, _, _ in HOSTILE] + [attempt("valid")]}
    results = ok(ready.post(path, request))["assessments"]
    for (item, status, message), result in zip(HOSTILE, results, strict=False):
        assert result["status"] == status, (item["attemptId"], result)
        assert result.get("message") == message, item["attemptId"]
    assert results[-1]["status"] == "SUBMITTED"
    assert [e["attemptId"] for e in topic_events(ready.app, "assess")] == ["valid"]
    assert aggregated(ready) == ["valid"]
    assert topic_events(ready.app, "telemetry.assess.failed") == []


def test_the_answer_limit_follows_the_setting(ready: Api):
    ready.app.settings.assessment.max_questions = 2
    results = ok(ready.post(SAVE, {"assessments": [attempt("three", [answer(f"q{n}") for n in range(3)])]}))
    assert results["assessments"][0]["message"] == "events has 3 answers, more than the 2 allowed"


def update_error(api: Api, request: dict[str, Any]) -> str:
    body = error(api.patch(UPDATE, request), 400, "INVALID_PARAMETER_VALUE")
    return str(body["params"]["errmsg"])


def test_content_state_update_refuses_hostile_assessments_naming_the_field(ready: Api):
    # Regression: content-state assessments had no A1 check at all, so each of these was published as is.
    for item, _, message in HOSTILE:
        errmsg = update_error(ready, {"assessments": [attempt("valid"), item]})
        field, rule = message.split(" ", 1)  # type: ignore[union-attr]
        assert f"({rule}) for parameter {field}." in errmsg, errmsg
    assert topic_events(ready.app, "assess") == [] and consumption(ready.app) == {}
    assert ok(ready.patch(UPDATE, {"assessments": [attempt("valid")]})) == {A1: "SUCCESS", B: "SUCCESS"}
    assert aggregated(ready) == ["valid"]


def content(**fields: Any) -> dict[str, Any]:
    return {"courseId": C, "batchId": B, "contentId": A1, "status": 1, **fields}


@pytest.mark.parametrize(
    ("item", "name", "rule"),
    [
        # Regression: an OverflowError dropped the connection instead of answering.
        (content(lastAccessTime="0001-01-01 00:00:00:000+1400"), "lastAccessTime", TIMESTAMP),
        (content(lastCompletedTime="9999-12-31 23:59:59:999-1400"), "lastCompletedTime", TIMESTAMP),
        (content(lastAccessTime="1969-12-31 23:59:59:999+0000"), "lastAccessTime", TIMESTAMP),
        (content(lastUpdatedTime="0001-01-01 00:00:00:000+0100"), "lastUpdatedTime", TIMESTAMP),
        (content(progressdetails=nested(100)), "progressdetails", NESTED),
        (content(progressdetails={"mark": [float("inf")]}), "progressdetails", "must hold only finite numbers"),
    ],
)
def test_content_state_update_refuses_hostile_content_items(ready: Api, item: dict[str, Any], name: str, rule: str):
    request = {"contents": [content(), item]}
    if rule == "must hold only finite numbers":  # JSON has no infinity: sent as the text the standard library writes
        response = ready.call("PATCH", UPDATE, content=json.dumps({"request": request}))
        body = error(response, 400, "INVALID_PARAMETER_VALUE")
        errmsg = str(body["params"]["errmsg"])
    else:
        errmsg = update_error(ready, request)
    assert f"({rule}) for parameter {name}. Please provide a valid value." in errmsg, errmsg
    assert consumption(ready.app) == {}


def test_content_state_dates_at_the_bounds_are_accepted(ready: Api):
    item = content(status=2, lastAccessTime="1970-01-01 00:00:00:000+0000")
    item["lastCompletedTime"] = "9999-12-31 23:59:59:999+0000"
    assert ok(ready.patch(UPDATE, {"contents": [item]})) == {A1: "SUCCESS"}
    row = consumption(ready.app)[A1]
    assert (row["last_access_time"], row["last_completed_time"]) == (0, 253402300799999)


@pytest.mark.parametrize(
    ("path", "request_"),
    [
        (SAVE, {"assessments": [attempt("t", with_item(title="what\x00is"))]}),
        (SUBMIT, {"assessments": [attempt("t", contentId="do\x00a1")]}),
        (SUBMIT, {"assessments": [attempt("t", [{**answer(), "context": {"channel": "c\x00"}}])]}),
        (UPDATE, {"assessments": [{**attempt("t"), "userId": "u\x00"}]}),
        (UPDATE, {"contents": [content(contentId="do\x00a1")]}),
        (UPDATE, {"contents": [content(progressdetails={"a\x00": 1})]}),
    ],
)
def test_nul_anywhere_in_a_body_is_refused_and_nothing_is_written(ready: Api, path: str, request_: dict[str, Any]):
    response = ready.patch(path, request_) if path == UPDATE else ready.post(path, request_)
    error(response, 400, "INVALID_REQUESTED_DATA")
    assert topic_events(ready.app, "assess") == [] and consumption(ready.app) == {}


@pytest.mark.parametrize("path", [SAVE, SUBMIT, UPDATE])
def test_a_body_nested_far_too_deep_is_a_client_error(ready: Api, path: str):
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"request": {"assessments": [' + deep + "]}}"
    response = ready.call("PATCH" if path == UPDATE else "POST", path, content=body)
    assert 400 <= response.status_code < 500, response.text


def test_the_job_fails_hostile_events_with_the_rule_and_applies_the_others(ready: Api):
    # Regression: each of these, between two valid events, stopped the aggregator with 0 rows written.
    valid = [
        {**attempt("first"), "userId": "u-a"},
        {**attempt("last"), "userId": "u-b"},
    ]
    hostile = [
        attempt("p-ts", assessmentTs=9223372036854775808),
        attempt("p-score", [answer(score=1e26)]),
        attempt("p-inf", [answer(score="1e999")]),
        attempt("p-deep", [answer(resvalues=[{"a": nested(500)}])]),
        attempt("p-nul", with_item(title="t\x00")),
        {**attempt("p-user"), "userId": "u\x00"},
    ]
    publish(ready.app, "assess", [valid[0], *(json.dumps(e) for e in hostile), valid[1]])
    assert aggregated(ready) == ["first", "last"]
    failed = topic_events(ready.app, "telemetry.assess.failed")
    # An event too deep for the failed topic's encoder is kept as its original text.
    originals = [json.loads(f["raw"]) if "raw" in f else f for f in failed]
    assert [e["attemptId"] for e in originals] == [e["attemptId"] for e in hostile]
    assert [f["metadata"]["validation_error"] for f in failed] == [
        f"assessmentTs {TIMESTAMP}",
        f"events[0].edata.score {NUMBER}",
        f"events[0].edata.score {NUMBER}",
        f"events[0].edata.resvalues {NESTED}",
        f"events[0].edata.item.title {NUL}",
        f"userId {NUL}",
    ]


def test_the_job_takes_the_answer_limit_from_the_settings(ready: Api):
    ready.app.settings.assessment.max_questions = 2
    publish(ready.app, "assess", [attempt("three", [answer(f"q{n}") for n in range(3)]), attempt("two")])
    assert aggregated(ready) == ["two"]
    [failed] = topic_events(ready.app, "telemetry.assess.failed")
    assert failed["metadata"]["validation_error"] == "events has 3 answers, more than the 2 allowed"


def test_progress_and_certificate_jobs_fail_events_outside_the_bounds(ready: Api):
    # On PostgreSQL a NUL in an identifier used to fail the whole batch deep in a query, again on every retry.
    now = ready.app.clock()
    progress = [progress_event(user_id=u, batch_id=B, course_id=C, contents=[(A1, 2)], now=now) for u in ("u\x00", U)]
    progress[1]["edata"]["extra"] = nested(70)
    certificate = issue_certificate_request(course_id=C, batch_id=B, user_id="u\x00", now=now)
    publish(ready.app, "progress", progress)
    publish(ready.app, "certificate", [certificate])
    drain(ready.app, ["activity-aggregate-updater", "certificate-pre-processor"])
    failed = topic_events(ready.app, "activity.agg.failed")
    assert [f["metadata"]["validation_error"] for f in failed] == [f"object {NUL}", f"edata {NESTED}"]
    [failed_request] = topic_events(ready.app, "issue.certificate.failed")
    assert failed_request["metadata"]["validation_error"] == f"edata {NUL}"
