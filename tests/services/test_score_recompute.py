"""SPEC §4.2 S1–S5 outside the stream (`services.score_recompute`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import assessment_aggregator, event_log, user_activity_agg
from learnagg.domain.attempt_metrics import AttemptRecord
from learnagg.services.score_recompute import plan_scores, recompute_scores
from tests.conftest import T
from tests.support import activity_rows

C, B, U = "do_course", "batch-1", "user-1"
A1_, A2_ = "do_a1", "do_a2"
LEARNER = (C, B, U)


def live(
    user: str, content: str, attempt: str, score: float, max_score: float, ts: int | None, *, course: str = C, batch=B
) -> dict[str, Any]:
    """One `assessment_aggregator` row."""
    return {
        "user_id": user,
        "course_id": course,
        "batch_id": batch,
        "content_id": content,
        "attempt_id": attempt,
        "created_on": 1,
        "updated_on": 1,
        "last_attempted_on": ts,
        "total_score": score,
        "total_max_score": max_score,
        "grand_total": "",
        "question": [],
    }


def entry(attempt: str, content: str, score: float, max_score: float, ts: int | None) -> str:
    """An `agg_details` entry in the written form (SPEC §2.1)."""
    return json.dumps(
        {
            "attempt_id": attempt,
            "content_id": content,
            "score": score,
            "max_score": max_score,
            "last_attempted_on": ts,
            "type": "attempt_metrics",
        },
        separators=(",", ":"),
    )


def seed(app: bootstrap.App, *, attempts: list[dict] = (), rows: list[dict] = ()) -> None:  # type: ignore[assignment]
    """Insert attempt rows and `user_activity_agg` rows (a row dict gives its non-key columns)."""
    with app.store.write() as conn:
        if attempts:
            conn.execute(insert(assessment_aggregator), list(attempts))
        for row in rows:
            values = {"activity_type": "Course", "activity_id": C, "user_id": U, "context_id": f"cb:{B}", **row}
            conn.execute(insert(user_activity_agg), [values])


def recompute(app: bootstrap.App, learners=(LEARNER,), extra=None, settings=None) -> set[str]:
    with app.store.write() as conn:
        return recompute_scores(
            conn,
            app.store.dialect,
            learners,
            settings=settings or app.settings.assessment,
            legacy=app.settings.legacy,
            now=app.clock(),
            extra=extra,
        )


def course_row(app: bootstrap.App, user: str = U, batch: str = B) -> dict:
    [row] = activity_rows(app, activity_id=C, user_id=user, context_id=f"cb:{batch}")
    return row


def test_s1_s5_live_rows_give_metrics_timestamps_and_sorted_details(app):
    seed(app, attempts=[live(U, A2_, "at-2", 3.0, 4.0, 20), live(U, A1_, "at-1", 1.33, 2.0, 10)])
    assert recompute(app) == {U}
    row = course_row(app)
    assert row["aggregates"] == {
        f"score:{A1_}": 1.33,
        f"max_score:{A1_}": 2.0,
        f"attempts_count:{A1_}": 1.0,
        f"score:{A2_}": 3.0,
        f"max_score:{A2_}": 4.0,
        f"attempts_count:{A2_}": 1.0,
    }
    assert row["agg_last_updated"] == dict.fromkeys(row["aggregates"], T)
    assert row["agg_details"] == [entry("at-1", A1_, 1.33, 2.0, 10), entry("at-2", A2_, 3.0, 4.0, 20)]
    assert row["agg"] is None


def test_s2_history_only_attempts_still_count(app):
    seed(app, attempts=[live(U, A1_, "at-2", 1.0, 5.0, 20)], rows=[{"agg_details": [entry("at-1", A1_, 4.0, 5.0, 10)]}])
    recompute(app)
    row = course_row(app)
    assert row["aggregates"][f"score:{A1_}"] == 4.0
    assert row["aggregates"][f"attempts_count:{A1_}"] == 2.0
    assert row["agg_details"] == [entry("at-1", A1_, 4.0, 5.0, 10), entry("at-2", A1_, 1.0, 5.0, 20)]


def test_s3_live_row_wins_over_history_of_the_same_attempt(app):
    seed(app, attempts=[live(U, A1_, "at-1", 1.0, 2.0, 30)], rows=[{"agg_details": [entry("at-1", A1_, 2.0, 2.0, 10)]}])
    recompute(app)
    row = course_row(app)
    assert row["aggregates"][f"score:{A1_}"] == 1.0
    assert row["aggregates"][f"attempts_count:{A1_}"] == 1.0
    assert row["agg_details"] == [entry("at-1", A1_, 1.0, 2.0, 30)]


def test_s3_extra_source_ranks_between_history_and_live(app):
    seed(
        app,
        attempts=[live(U, A1_, "at-2", 3.0, 10.0, 20)],
        rows=[{"agg_details": [entry("at-1", A1_, 1.0, 10.0, 10), entry("at-3", A1_, 9.0, 10.0, 30)]}],
    )
    extra = {
        LEARNER: [
            AttemptRecord("at-1", A1_, 2.0, 10.0, 11),  # beats the history entry of at-1
            AttemptRecord("at-2", A1_, 8.0, 10.0, 21),  # loses to the live row of at-2
            AttemptRecord("at-4", A1_, 0.5, 10.0, 40),  # archived only: counted
        ]
    }
    recompute(app, extra=extra)
    row = course_row(app)
    assert row["agg_details"] == [
        entry("at-1", A1_, 2.0, 10.0, 11),
        entry("at-2", A1_, 3.0, 10.0, 20),
        entry("at-3", A1_, 9.0, 10.0, 30),
        entry("at-4", A1_, 0.5, 10.0, 40),
    ]
    assert row["aggregates"][f"attempts_count:{A1_}"] == 4.0
    assert row["aggregates"][f"score:{A1_}"] == 9.0


def test_s4_best_tie_takes_lowest_attempt_id_and_its_max_score(app):
    seed(
        app,
        attempts=[
            live(U, A1_, "at-b", 4.0, 8.0, 10),
            live(U, A1_, "at-a", 4.0, 5.0, 20),
            live(U, A1_, "at-c", 3.0, 3.0, 30),
        ],
    )
    recompute(app)
    aggregates = course_row(app)["aggregates"]
    assert (aggregates[f"score:{A1_}"], aggregates[f"max_score:{A1_}"]) == (4.0, 5.0)
    assert aggregates[f"attempts_count:{A1_}"] == 3.0


@pytest.mark.parametrize(
    ("method", "score", "max_score"),
    [("best", 4.0, 8.0), ("latest", 1.0, 2.0), ("first", 4.0, 8.0), ("average", 2.5, 5.0)],
)
def test_s4_grading_method_setting(app, method, score, max_score):
    seed(app, attempts=[live(U, A1_, "at-1", 4.0, 8.0, None), live(U, A1_, "at-2", 1.0, 2.0, 5)])
    recompute(app, settings=app.settings.assessment.model_copy(update={"grading_method": method}))
    aggregates = course_row(app)["aggregates"]
    assert (aggregates[f"score:{A1_}"], aggregates[f"max_score:{A1_}"]) == (score, max_score)


def test_s2_legacy_history_shapes_are_read_and_rewritten_in_the_written_form(app):
    legacy_date = json.dumps({"content_id": A1_, "attempt_id": "at-1", "score": 2, "max_score": 4,
                              "last_attempted_on": "Sep 19, 2019, 11:15:29 AM"})  # fmt: skip
    legacy_seconds = json.dumps({"attempt_id": "at-2", "content_id": A1_, "score": "3", "max_score": 4,
                                 "attempted_on": 1568891729})  # fmt: skip
    seed(app, rows=[{"agg_details": [legacy_date, legacy_seconds]}])
    recompute(app)
    row = course_row(app)
    assert row["agg_details"] == [
        entry("at-1", A1_, 2.0, 4.0, 1568891729000),
        entry("at-2", A1_, 3.0, 4.0, 1568891729000),
    ]
    assert row["aggregates"][f"score:{A1_}"] == 3.0


def test_s5_opaque_entries_are_kept_verbatim_after_the_records(app):
    opaque = ['{"attempt_id":"x"}', "not json", '{"attempt_id":"y","content_id":"c","score":"n/a","max_score":1}']
    seed(app, attempts=[live(U, A1_, "at-1", 1.0, 1.0, 10)], rows=[{"agg_details": [opaque[0], opaque[1], opaque[2]]}])
    recompute(app)
    assert course_row(app)["agg_details"] == [entry("at-1", A1_, 1.0, 1.0, 10), *opaque]


def test_s5_no_row_for_a_learner_without_attempts(app):
    seed(app, attempts=[live(U, A1_, "at-1", 1.0, 1.0, 10)])
    assert recompute(app, learners=[LEARNER, (C, B, "user-without-attempts")]) == {U}
    assert activity_rows(app, user_id="user-without-attempts") == []
    assert [r["user_id"] for r in activity_rows(app)] == [U]


def test_s5_only_opaque_history_writes_nothing(app):
    seed(app, rows=[{"agg_details": ["not json"], "aggregates": {"completedCount": 1.0}}])
    assert recompute(app) == set()
    row = course_row(app)
    assert (row["agg_details"], row["aggregates"], row["agg_last_updated"]) == (
        ["not json"],
        {"completedCount": 1.0},
        None,
    )


def test_s5_other_keys_and_legacy_agg_are_untouched(app):
    seed(
        app,
        attempts=[live(U, A1_, "at-1", 1.0, 2.0, 10)],
        rows=[
            {
                "agg": {"completedCount": 3},
                "aggregates": {"completedCount": 3.0},
                "agg_last_updated": {"completedCount": 7},
            }
        ],
    )
    recompute(app)
    row = course_row(app)
    assert row["agg"] == {"completedCount": 3}
    assert row["aggregates"]["completedCount"] == 3.0 and row["aggregates"][f"score:{A1_}"] == 1.0
    assert row["agg_last_updated"]["completedCount"] == 7 and row["agg_last_updated"][f"score:{A1_}"] == T


def test_learners_are_kept_apart_across_users_batches_and_courses(app):
    seed(
        app,
        attempts=[
            live("u1", A1_, "at-1", 1.0, 1.0, 10),
            live("u2", A1_, "at-1", 2.0, 2.0, 10, batch="batch-2"),
            live("u1", A1_, "at-9", 9.0, 9.0, 10, batch="batch-2"),  # u1 in batch-2: not asked for
            live("u2", A1_, "at-8", 8.0, 8.0, 10, course="other"),  # u2 in another course: not asked for
        ],
    )
    assert recompute(app, learners=[(C, B, "u1"), (C, "batch-2", "u2")]) == {"u1", "u2"}
    assert course_row(app, "u1")["aggregates"][f"score:{A1_}"] == 1.0
    assert course_row(app, "u2", "batch-2")["aggregates"][f"score:{A1_}"] == 2.0
    assert course_row(app, "u2", "batch-2")["aggregates"][f"attempts_count:{A1_}"] == 1.0
    assert len(activity_rows(app)) == 2


def test_no_certificate_request_is_emitted(app):
    seed(app, attempts=[live(U, A1_, "at-1", 1.0, 1.0, 10)])
    recompute(app)
    with app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(event_log)).scalar() == 0


def test_plan_scores_writes_nothing_and_matches_the_write(app):
    seed(app, attempts=[live(U, A1_, "at-1", 1.0, 2.0, 10)])
    with app.store.read() as conn:
        planned = plan_scores(conn, [LEARNER], settings=app.settings.assessment, legacy=app.settings.legacy, now=T)
    assert activity_rows(app) == []
    recompute(app)
    row = course_row(app)
    assert (planned[LEARNER].aggregates, planned[LEARNER].agg_details) == (row["aggregates"], row["agg_details"])


def test_empty_learner_set_is_a_no_op(app):
    assert recompute(app, learners=[]) == set()
