"""SPEC §3.6: the golden example and its three follow-up checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import delete

from learnagg.adapters.store.tables import assessment_aggregator
from tests.conftest import T
from tests.support import activity_rows, attempts, course, drain, golden_event, load, publish, topic_events

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"
USER = "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f"
BATCH = "012846671379595264119"
ATTEMPT = "8cd87e24df268ad09a8b0060c0a40271"

EXPECTED_AGGREGATES = {
    f"attempts_count:{CONTENT}": 1.0,
    f"max_score:{CONTENT}": 2.0,
    f"score:{CONTENT}": 1.33,
}
EXPECTED_DETAILS = [
    '{"attempt_id":"8cd87e24df268ad09a8b0060c0a40271","content_id":"do_212686723743318016173",'
    '"score":1.33,"max_score":2.0,"last_attempted_on":1568891729576,"type":"attempt_metrics"}'
]


def _golden(app):
    load(app, course(COURSE, [CONTENT]))
    publish(app, "assess", [golden_event()])
    drain(app)


def test_golden_assessment_row(app):
    _golden(app)
    [row] = attempts(app)
    questions = row.pop("question")
    assert row == {
        "user_id": USER,
        "course_id": COURSE,
        "batch_id": BATCH,
        "content_id": CONTENT,
        "attempt_id": ATTEMPT,
        "created_on": T,
        "updated_on": T,
        "last_attempted_on": 1568891729576,
        "total_score": 1.33,
        "total_max_score": 2.0,
        "grand_total": "1.33/2.0",
    }
    assert [q["id"] for q in questions] == [
        "2bc922e7-985e-486a-ae23-4ba9a1c67edc",
        "801ae93c-8807-4be5-8853-dd49362d8776",
    ]
    mtf, mcq = questions
    assert (mtf["assess_ts"], mtf["max_score"], mtf["score"], mtf["type"], mtf["title"], mtf["description"]) == (
        1568891772964,
        1.0,
        0.33,
        "mtf",
        "MTF 3\n",
        "",
    )
    assert mtf["duration"] == 24.0 and [list(m) for m in mtf["resvalues"]] == [["lhs"], ["rhs"]]
    assert [list(m) for m in mtf["params"]] == [["lhs"], ["rhs"], ["answer"]]
    assert (mcq["assess_ts"], mcq["score"], mcq["type"], mcq["duration"]) == (1568891747395, 1.0, "mcq", 14.0)
    assert mcq["title"] == "What is the Full form of WHO..?\n"
    assert mcq["resvalues"] == [{"1": '{"text":"World Health Organizaton\\n"}'}]
    assert mcq["params"] == golden_event()["events"][2]["edata"]["item"]["params"]


def test_golden_user_activity_agg_row(app):
    _golden(app)
    [row] = activity_rows(app)
    assert (row["activity_type"], row["activity_id"], row["user_id"], row["context_id"]) == (
        "Course",
        COURSE,
        USER,
        f"cb:{BATCH}",
    )
    assert row["agg"] is None
    assert row["aggregates"] == EXPECTED_AGGREGATES
    assert all(type(v) is float for v in row["aggregates"].values())
    assert row["agg_last_updated"] == dict.fromkeys(EXPECTED_AGGREGATES, T)
    assert row["agg_details"] == EXPECTED_DETAILS


def test_golden_events(app):
    _golden(app)
    [request] = topic_events(app, "certificate")
    assert request["object"] == {"id": f"{BATCH}_{COURSE}", "type": "CourseCertificateGeneration"}
    assert request["edata"]["userIds"] == [USER]
    assert request["edata"]["attemptId"] == ATTEMPT
    assert request["edata"]["action"] == "issue-certificate"
    assert request["ets"] == T and request["mid"].startswith(f"LP.{T}.")
    assert topic_events(app, "telemetry.assess.failed") == []


def test_followup_1_replay_writes_and_emits_nothing(app, clock):
    _golden(app)
    before = (attempts(app), activity_rows(app))
    clock.now = T + 1000
    publish(app, "assess", [golden_event()])
    drain(app)
    assert (attempts(app), activity_rows(app)) == before
    assert len(topic_events(app, "certificate")) == 1


def _recompute(at: int = 1600000000000) -> dict:
    return {
        "assessmentTs": at,
        "batchId": BATCH,
        "courseId": COURSE,
        "userId": USER,
        "attemptId": ATTEMPT,
        "contentId": CONTENT,
    }


def test_followup_2_recompute_changes_only_agg_last_updated(app, clock):
    _golden(app)
    [before] = activity_rows(app)
    attempts_before = attempts(app)
    T2 = T + 60_000
    clock.now = T2
    publish(app, "assess", [_recompute()])
    drain(app)
    [after] = activity_rows(app)
    assert after["agg_last_updated"] == dict.fromkeys(EXPECTED_AGGREGATES, T2)
    assert {k: v for k, v in after.items() if k != "agg_last_updated"} == {
        k: v for k, v in before.items() if k != "agg_last_updated"
    }
    assert attempts(app) == attempts_before
    requests = topic_events(app, "certificate")
    assert len(requests) == 2 and requests[1]["edata"]["attemptId"] == ATTEMPT


def test_followup_3_recompute_after_deletion_keeps_metrics(app, clock):
    _golden(app)
    with app.store.write() as conn:
        conn.execute(delete(assessment_aggregator))
    clock.now = T + 60_000
    publish(app, "assess", [_recompute()])
    drain(app)
    [row] = activity_rows(app)
    assert row["aggregates"] == EXPECTED_AGGREGATES
    assert row["agg_details"] == EXPECTED_DETAILS
    assert json.loads(row["agg_details"][0])["score"] == 1.33
