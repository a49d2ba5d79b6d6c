"""SPEC §4.1 and §4.2 rule by rule, through the log and the worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from learnagg import bootstrap
from learnagg.adapters.store.tables import user_activity_agg
from learnagg.bench.demo_data import batch_event as attempt_event
from tests.conftest import T
from tests.support import activity_rows, attempts, course, drain, load, publish, source_ids, topic_events

C, B, U = "do_course", "batch-1", "user-1"
A1_, A2_ = "do_a1", "do_a2"


def answer(qid: str | None, score: float, ets: int, maxscore: float = 1.0) -> dict:
    return {
        "eid": "ASSESS",
        "ets": ets,
        "edata": {"score": score, "duration": 1, "item": {"id": qid, "maxscore": maxscore}},
    }


def attempt(attempt_id: str, ts: int, answers: list[dict], content: str = A1_, user: str = U) -> dict:
    return attempt_event(
        course_id=C, batch_id=B, user_id=user, content_id=content, attempt_id=attempt_id, ts=ts, events=answers
    )


def two_of(score_a: float, score_b: float, ets: int = 1) -> list[dict]:
    return [answer("q1", score_a, ets), answer("q2", score_b, ets)]


def with_settings(app: bootstrap.App, **assessment: object) -> bootstrap.App:
    settings = app.settings.model_copy(update={"assessment": app.settings.assessment.model_copy(update=assessment)})
    return bootstrap.build(settings, clock=app.clock, store=app.store)


def failed(app: bootstrap.App) -> list[dict]:
    return topic_events(app, "telemetry.assess.failed")


def course_row(app: bootstrap.App) -> dict:
    [row] = activity_rows(app, activity_id=C, user_id=U)
    return row


# --- A1 validation and the failed envelope (SPEC §3.5) ---


def test_a1_not_json_goes_to_failed_topic_as_raw_and_worker_carries_on(app, bus):
    load(app, course(C, [A1_]))
    publish(app, "assess", ["{not json", attempt("at-1", 10, two_of(1, 1))])
    where = source_ids(app, "assessment-aggregator", "assess")
    drain(app)
    [bad] = failed(app)
    assert bad == {
        "raw": "{not json",
        "metadata": {
            "validation_error": "event is not a JSON object",
            "src": "AssessmentAggregator",
            "failed_ts": T,
            "failed_id": where["{not json"],  # <job>:<partition>:<position of the source event>
        },
    }
    if bus == "p1":  # one partition on the embedded log: the first event of the log
        assert where["{not json"] == "assessment-aggregator:0:1"
    assert len(attempts(app)) == 1


def test_a1_float_assessment_ts_is_refused_with_original_event_kept(app):
    event = attempt("at-1", 10, two_of(1, 1))
    event["assessmentTs"] = 1568891729576.0
    event["metadata"] = {"other": "kept"}
    publish(app, "assess", [event])
    [where] = source_ids(app, "assessment-aggregator", "assess").values()
    drain(app)
    [bad] = failed(app)
    assert bad["metadata"] == {
        "other": "kept",
        "validation_error": "assessmentTs must be an integer",
        "src": "AssessmentAggregator",
        "failed_ts": T,
        "failed_id": where,
    }
    assert {k: v for k, v in bad.items() if k != "metadata"} == {k: v for k, v in event.items() if k != "metadata"}
    assert attempts(app) == [] and activity_rows(app) == []


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("courseId"), "courseId is mandatory"),
        (lambda e: e.update(userId="  "), "userId is mandatory"),
        (lambda e: e.update(events={"a": 1}), "events must be an array"),
        (lambda e: e.update(attemptId=""), "attemptId is mandatory"),
        (lambda e: e["events"][1].update(ets="x"), "events[1].ets must be an integer"),
        (lambda e: e["events"][0]["edata"].update(score="abc"), "events[0].edata.score must be numeric"),
    ],
)
def test_a1_each_check_sends_its_message(app, mutate, reason):
    event = attempt("at-1", 10, two_of(1, 1))
    mutate(event)
    publish(app, "assess", [event])
    drain(app)
    assert [f["metadata"]["validation_error"] for f in failed(app)] == [reason]


# --- A3 leaf check ---


def test_a3_content_not_a_leaf_fails(app):
    load(app, course(C, [A2_]))
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(app)
    assert [f["metadata"]["validation_error"] for f in failed(app)] == [
        f"contentId {A1_} is not a leaf node of course {C}"
    ]
    assert attempts(app) == []


def test_a3_unknown_course_is_fail_open(app):
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(app)
    assert failed(app) == [] and len(attempts(app)) == 1


def test_a3_strict_leaf_validation_refuses_unknown_course(app):
    strict = with_settings(app, strict_leaf_validation=True)
    publish(strict, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(strict)
    assert [f["metadata"]["validation_error"] for f in failed(strict)] == [f"leaf nodes not found for course {C}"]


# --- A4 recompute ---


def test_a4_recompute_without_attempts_writes_nothing_and_emits_empty_attempt_id(app):
    event = attempt("at-1", 10, [])
    publish(app, "assess", [event])
    drain(app)
    assert attempts(app) == [] and activity_rows(app) == []
    [request] = topic_events(app, "certificate")
    assert request["edata"]["attemptId"] == ""


# --- A5 / A7 dedup and totals through the job ---


def test_a5_latest_answer_per_question_is_kept(app):
    publish(app, "assess", [attempt("at-1", 10, [answer("q1", 0, 5), answer("q1", 1, 9), answer("q2", 0.5, 3)])])
    drain(app)
    [row] = attempts(app)
    assert [(q["id"], q["score"]) for q in row["question"]] == [("q1", 1.0), ("q2", 0.5)]
    assert (row["total_score"], row["total_max_score"], row["grand_total"]) == (1.5, 2.0, "1.5/2.0")


# --- A6 question-count guard ---


def test_a6_more_questions_than_total_questions_is_ignored(app):
    hierarchy = course(C, [A1_])
    hierarchy["children"][0]["totalQuestions"] = 1
    load(app, hierarchy)
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 1))])
    worker = drain(app)
    assert [f["metadata"]["validation_error"] for f in failed(app)] == [
        f"question count 2 exceeds totalQuestions 1 for content {A1_}"
    ]
    assert attempts(app) == [] and activity_rows(app) == []
    assert worker.consumers[0].reference_counters()["ignored-event-count"] == 1


def test_a6_guard_off_or_unknown_total_accepts(app):
    hierarchy = course(C, [A1_, A2_])
    hierarchy["children"][0]["totalQuestions"] = 1
    hierarchy["children"][1]["totalQuestions"] = "0"  # unknown
    load(app, hierarchy)
    publish(app, "assess", [attempt("at-2", 10, two_of(1, 1), content=A2_)])
    drain(app)
    off = with_settings(app, question_count_guard=False)
    publish(off, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(off)
    assert failed(app) == [] and len(attempts(app)) == 2


# --- A8 guarded upsert ---


def test_a8_older_or_equal_attempt_is_skipped_without_events(app, clock):
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(app)
    clock.now = T + 5
    publish(app, "assess", [attempt("at-1", 10, two_of(0, 0)), attempt("at-1", 9, two_of(0, 0))])
    drain(app)
    [row] = attempts(app)
    assert row["total_score"] == 2.0 and row["updated_on"] == T
    assert len(topic_events(app, "certificate")) == 1


def test_a8_newer_attempt_overwrites_and_keeps_created_on(app, clock):
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 1))])
    drain(app)
    clock.now = T + 5
    publish(app, "assess", [attempt("at-1", 11, two_of(0, 0.5))])
    drain(app)
    [row] = attempts(app)
    assert (row["total_score"], row["created_on"], row["updated_on"], row["last_attempted_on"]) == (0.5, T, T + 5, 11)
    # the best score follows the live row: the earlier 2.0 of the same attempt is replaced (S3: live rows win)
    assert course_row(app)["aggregates"][f"score:{A1_}"] == 0.5


# --- S2–S5 score aggregation ---


def test_s4_best_score_and_max_score_of_that_attempt(app):
    publish(
        app,
        "assess",
        [
            attempt("at-1", 10, [answer("q1", 1, 1, maxscore=2)]),
            attempt("at-2", 20, [answer("q1", 3, 1, maxscore=4)]),
            attempt("at-3", 30, [answer("q1", 3, 1, maxscore=5)]),
        ],
    )
    drain(app)
    aggregates = course_row(app)["aggregates"]
    assert aggregates == {f"score:{A1_}": 3.0, f"max_score:{A1_}": 4.0, f"attempts_count:{A1_}": 3.0}


@pytest.mark.parametrize(
    ("method", "score", "max_score"),
    [
        ("latest", 1.0, 2.0),
        ("first", 2.0, 4.0),
        ("average", 1.5, 3.0),
        ("best", 2.0, 4.0),
    ],
)
def test_s4_grading_methods(app, method, score, max_score):
    graded = with_settings(app, grading_method=method)
    publish(
        graded,
        "assess",
        [
            attempt("at-1", 10, [answer("q1", 2, 1, maxscore=4)]),
            attempt("at-2", 20, [answer("q1", 1, 1, maxscore=2)]),
        ],
    )
    drain(graded)
    aggregates = course_row(graded)["aggregates"]
    assert (aggregates[f"score:{A1_}"], aggregates[f"max_score:{A1_}"]) == (score, max_score)


def _seed_course_row(app, **columns):
    row = {"activity_type": "Course", "activity_id": C, "user_id": U, "context_id": f"cb:{B}", **columns}
    with app.store.write() as conn:
        conn.execute(insert(user_activity_agg), [row])


def test_s5_other_keys_and_legacy_agg_are_untouched(app):
    _seed_course_row(
        app, agg={"completedCount": 3}, aggregates={"completedCount": 4.0}, agg_last_updated={"completedCount": 5}
    )
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 0))])
    drain(app)
    row = course_row(app)
    assert row["agg"] == {"completedCount": 3}
    assert row["aggregates"]["completedCount"] == 4.0 and row["aggregates"][f"score:{A1_}"] == 1.0
    assert row["agg_last_updated"]["completedCount"] == 5


def test_s2_history_with_legacy_shapes_and_opaque_entries(app):
    legacy = [
        json.dumps(
            {
                "attempt_id": "old-1",
                "content_id": A1_,
                "score": 5,
                "max_score": 5,
                "last_attempted_on": "Sep 19, 2019, 11:15:29 AM",
            }
        ),
        json.dumps({"content_id": A1_, "attempted_on": 1568800000, "score": 1, "max_score": 5, "attempt_id": "old-2"}),
        "not json at all",
    ]
    _seed_course_row(app, agg_details=legacy)
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 0))])
    drain(app)
    row = course_row(app)
    assert row["aggregates"] == {f"score:{A1_}": 5.0, f"max_score:{A1_}": 5.0, f"attempts_count:{A1_}": 3.0}
    details = row["agg_details"]
    assert details[-1] == "not json at all"
    assert [json.loads(d)["attempt_id"] for d in details[:-1]] == ["at-1", "old-1", "old-2"]
    assert json.loads(details[1])["last_attempted_on"] == 1568891729000
    assert json.loads(details[2])["last_attempted_on"] == 1568800000000


def test_s7_latest_attempt_id_is_empty_for_two_contents(app):
    publish(app, "assess", [attempt("at-1", 10, two_of(1, 0)), attempt("at-2", 20, two_of(1, 0), content=A2_)])
    drain(app)
    assert [r["edata"]["attemptId"] for r in topic_events(app, "certificate")] == ["at-1", ""]


def test_s7_latest_attempt_may_not_be_the_one_processed(app):
    publish(app, "assess", [attempt("at-2", 20, two_of(1, 0)), attempt("at-1", 10, two_of(1, 0))])
    drain(app)
    assert [r["edata"]["attemptId"] for r in topic_events(app, "certificate")] == ["at-2", "at-2"]


def test_learners_are_kept_apart_within_one_batch(app):
    publish(
        app, "assess", [attempt("at-1", 10, two_of(1, 0), user="u-a"), attempt("at-1", 10, two_of(1, 1), user="u-b")]
    )
    drain(app)
    rows = {r["user_id"]: r["aggregates"][f"score:{A1_}"] for r in activity_rows(app)}
    assert rows == {"u-a": 1.0, "u-b": 2.0}
