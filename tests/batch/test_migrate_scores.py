"""SPEC §6.1 score-metric migration rule by rule (`jobs.migrate_scores`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, insert, select

from learnagg import bootstrap
from learnagg.adapters.store.tables import assessment_aggregator, event_log, user_activity_agg
from learnagg.batch.migrate_scores import backfill_scores, migrate_legacy_agg, migrate_scores
from learnagg.domain.legacy_agg import backfill_update, copy_legacy_agg, missing_legacy_values
from tests.conftest import T
from tests.support import activity_rows

C, B, B2, U = "do_course", "batch-1", "batch-2", "user-1"
A1_, A2_ = "do_a1", "do_a2"
UNIT = "do_unit"


def attempt_row(
    content: str, attempt: str, score: float, max_score: float, ts: int, *, user: str = U, batch: str = B
) -> dict[str, Any]:
    """One `assessment_aggregator` row."""
    return {
        "user_id": user,
        "course_id": C,
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


def agg_row(*, activity_id: str = C, user: str = U, batch: str = B, **columns: Any) -> dict[str, Any]:
    """One `user_activity_agg` row; columns left out are SQL NULL."""
    return {
        "activity_type": "Course",
        "activity_id": activity_id,
        "user_id": user,
        "context_id": f"cb:{batch}",
        **columns,
    }


def seed(url_or_app: Any, *, attempts: list[dict] | None = None, rows: list[dict] | None = None) -> None:
    """Insert rows with plain INSERTs (each row on its own, so rows may name different columns)."""
    store = url_or_app.store if isinstance(url_or_app, bootstrap.App) else url_or_app
    with store.write() as conn:
        if attempts:
            conn.execute(insert(assessment_aggregator), attempts)
        for row in rows or []:
            conn.execute(insert(user_activity_agg), [row])


def legacy_fixture() -> dict[str, list[dict]]:
    """Two batches: legacy rows (course and unit), attempts replacing legacy ints, a learner with no row yet."""
    return {
        "rows": [
            agg_row(
                agg={"completedCount": 3, f"score:{A1_}": 5, f"max_score:{A1_}": 10, f"attempts_count:{A1_}": 1},
                aggregates={"completedCount": 2.5},
                agg_last_updated={"completedCount": 111},
            ),
            agg_row(activity_id=UNIT, agg={"completedCount": 1}),
            agg_row(batch=B2, user="user-2", agg={"completedCount": 4}),
        ],
        "attempts": [
            attempt_row(A1_, "at-1", 3.0, 10.0, 10),
            attempt_row(A1_, "at-2", 4.0, 5.0, 20),
            attempt_row(A2_, "at-3", 1.33, 2.0, 30, user="user-3"),
            attempt_row(A1_, "at-4", 2.0, 2.0, 40, user="user-2", batch=B2),
        ],
    }


def snapshot(app: bootstrap.App) -> list[dict]:
    return activity_rows(app)


def course_row(app: bootstrap.App, user: str = U, batch: str = B) -> dict:
    [row] = activity_rows(app, activity_id=C, user_id=user, context_id=f"cb:{batch}")
    return row


# --- pure rules ------------------------------------------------------------------------------------------------


def test_missing_legacy_values_skips_present_and_non_numeric_keys():
    agg = {"a": 1, "b": 2, "c": "x", "d": None, "e": True, "f": "7", "g": 10**400}
    assert missing_legacy_values(agg, {"b": 0.5}) == {"a": 1.0, "f": 7.0}
    assert missing_legacy_values(None, None) == {}
    assert missing_legacy_values({"a": 1}, {"a": None}) == {}  # present, even as null: never overwritten


def test_copy_legacy_agg_sets_timestamps_only_where_absent():
    change = copy_legacy_agg({"a": 1, "b": 2}, {"z": 9.0}, {"b": 5}, now=T)
    assert change is not None
    assert change.aggregates == {"z": 9.0, "a": 1.0, "b": 2.0}
    assert change.agg_last_updated == {"b": 5, "a": T}
    assert change.keys_added == 2
    assert copy_legacy_agg({"a": 1}, {"a": 3.0}, None, now=T) is None


def test_backfill_update_counts_against_the_row_as_step_1_leaves_it():
    metrics = {"score:c": 5.0, "max_score:c": 10.0, "attempts_count:c": 1.0}
    legacy = {"score:c": 5, "max_score:c": 10, "attempts_count:c": 1}
    assert backfill_update(None, None, ["d"], metrics=metrics, details=["d"], now=T, legacy_agg=legacy) is None
    change = backfill_update({"x": 1.0}, {"x": 3}, None, metrics=metrics, details=["d"], now=T)
    assert change is not None
    assert (change.keys_added, change.keys_updated) == (3, 0)
    assert change.aggregates == {"x": 1.0, **metrics}
    assert change.agg_last_updated == {"x": 3, **dict.fromkeys(metrics, T)}
    updated = backfill_update({"score:c": 4.0}, None, ["d"], metrics={"score:c": 5.0}, details=["d"], now=T)
    assert updated is not None and (updated.keys_added, updated.keys_updated) == (0, 1)


# --- step 1: legacy ints ---------------------------------------------------------------------------------------


def test_step1_legacy_ints_are_copied_only_where_absent(app):
    seed(app, rows=legacy_fixture()["rows"])
    summary = migrate_legacy_agg(app)
    row = course_row(app)
    assert row["aggregates"] == {
        "completedCount": 2.5,  # an existing double is never overwritten
        f"score:{A1_}": 5.0,
        f"max_score:{A1_}": 10.0,
        f"attempts_count:{A1_}": 1.0,
    }
    assert all(type(v) is float for v in row["aggregates"].values())
    assert (summary.rows_examined, summary.rows_changed, summary.keys_added) == (3, 3, 5)


def test_step1_agg_is_never_modified(app):
    rows = legacy_fixture()["rows"]
    seed(app, rows=rows)
    migrate_legacy_agg(app)
    assert [r["agg"] for r in snapshot(app)] == [r["agg"] for r in sorted(rows, key=_key)]


def _key(row: dict) -> tuple:
    return (row["activity_type"], row["activity_id"], row["user_id"], row["context_id"])


def test_step1_agg_last_updated_is_set_only_when_absent(app):
    seed(app, rows=legacy_fixture()["rows"])
    migrate_legacy_agg(app)
    assert course_row(app)["agg_last_updated"] == {
        "completedCount": 111,
        f"score:{A1_}": T,
        f"max_score:{A1_}": T,
        f"attempts_count:{A1_}": T,
    }


def test_step1_timestamp_of_a_key_already_present_is_kept(app):
    seed(app, rows=[agg_row(agg={"completedCount": 3}, agg_last_updated={"completedCount": 42})])
    migrate_legacy_agg(app)
    row = course_row(app)
    assert (row["aggregates"], row["agg_last_updated"]) == ({"completedCount": 3.0}, {"completedCount": 42})


def test_step1_unit_rows_and_null_maps_are_migrated(app):
    # aggregates=None is a JSON null on PostgreSQL, not SQL NULL: it must become a map, not an array.
    seed(app, rows=[agg_row(activity_id=UNIT, agg={"completedCount": 1}, aggregates=None, agg_last_updated=None)])
    migrate_legacy_agg(app)
    [row] = activity_rows(app, activity_id=UNIT)
    assert (row["aggregates"], row["agg_last_updated"]) == ({"completedCount": 1.0}, {"completedCount": T})


def test_step1_rows_without_agg_are_not_examined(app):
    seed(app, rows=[agg_row(aggregates={"completedCount": 1.0}), agg_row(user="u9", agg={})])
    summary = migrate_legacy_agg(app)
    assert (summary.rows_examined, summary.rows_changed) == (1, 0)


def test_step1_in_small_chunks_covers_every_row(app):
    seed(app, rows=[agg_row(user=f"u{i:02}", agg={"completedCount": i}) for i in range(7)])
    summary = migrate_legacy_agg(app, chunk_rows=3)
    assert (summary.rows_examined, summary.rows_changed, summary.keys_added) == (7, 7, 7)
    assert [r["aggregates"] for r in snapshot(app)] == [{"completedCount": float(i)} for i in range(7)]


# --- step 2 and the whole migration ------------------------------------------------------------------------------


def test_step2_after_step1_attempt_scores_replace_legacy_ints(app):
    seed(app, **legacy_fixture())
    migrate_scores(app)
    row = course_row(app)
    assert row["aggregates"] == {
        "completedCount": 2.5,
        f"score:{A1_}": 4.0,  # the legacy 5 is replaced by the best attempt
        f"max_score:{A1_}": 5.0,  # from the selected attempt, not the largest max
        f"attempts_count:{A1_}": 2.0,
    }
    assert row["agg"]["score:" + A1_] == 5  # agg untouched
    assert row["agg_last_updated"]["completedCount"] == 111
    assert json.loads(row["agg_details"][1])["attempt_id"] == "at-2"


def test_step2_creates_missing_rows(app):
    seed(app, **legacy_fixture())
    migrate_scores(app)
    row = course_row(app, user="user-3")
    assert row["aggregates"] == {f"score:{A2_}": 1.33, f"max_score:{A2_}": 2.0, f"attempts_count:{A2_}": 1.0}
    assert row["agg"] is None
    assert row["agg_details"] == [
        '{"attempt_id":"at-3","content_id":"do_a2","score":1.33,"max_score":2.0,'
        '"last_attempted_on":30,"type":"attempt_metrics"}'
    ]


def test_step2_keeps_history_of_archived_attempts(app):
    archived = '{"attempt_id":"at-0","content_id":"do_a1","score":9.0,"max_score":10.0,"last_attempted_on":5}'
    seed(app, attempts=[attempt_row(A1_, "at-1", 3.0, 10.0, 10)], rows=[agg_row(agg_details=[archived])])
    migrate_scores(app)
    aggregates = course_row(app)["aggregates"]
    assert (aggregates[f"score:{A1_}"], aggregates[f"attempts_count:{A1_}"]) == (9.0, 2.0)


def test_summary_counts_what_changed(app):
    seed(app, **legacy_fixture())
    summary = migrate_scores(app).to_json()
    assert summary["steps"] == {
        "agg-to-aggregates": {
            "rows_examined": 3,
            "rows_changed": 3,
            "rows_created": 0,
            "keys_added": 5,
            "keys_updated": 0,
        },
        # user-1 (3 legacy values replaced), user-3 (created), user-2 in batch-2 (3 keys added)
        "backfill": {"rows_examined": 3, "rows_changed": 3, "rows_created": 1, "keys_added": 6, "keys_updated": 3},
    }


def test_second_run_changes_nothing(app, clock):
    seed(app, **legacy_fixture())
    migrate_scores(app)
    before = snapshot(app)
    clock.now = T + 1000
    summary = migrate_scores(app)
    assert snapshot(app) == before  # agg_last_updated included
    assert all(s.rows_changed == s.keys_added == s.keys_updated == 0 for s in summary.steps)


def test_dry_run_changes_nothing_and_reports_the_same_counts(app):
    seed(app, **legacy_fixture())
    before = snapshot(app)
    dry = migrate_scores(app, dry_run=True)
    assert snapshot(app) == before
    real = migrate_scores(app)
    assert [s.to_json() for s in dry.steps] == [s.to_json() for s in real.steps]
    assert dry.dry_run and not real.dry_run


def test_batch_id_scopes_both_steps(app):
    seed(app, **legacy_fixture())
    summary = migrate_scores(app, batch_ids=[B2])
    assert course_row(app, user="user-2", batch=B2)["aggregates"][f"score:{A1_}"] == 2.0
    untouched = course_row(app)
    assert untouched["aggregates"] == {"completedCount": 2.5}
    assert activity_rows(app, user_id="user-3") == []
    assert [s.rows_examined for s in summary.steps] == [1, 1]
    assert summary.batch_ids == [B2]


def test_no_certificate_requests_are_emitted(app):
    seed(app, **legacy_fixture())
    migrate_scores(app)
    with app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(event_log)).scalar() == 0


def test_backfill_in_small_chunks_covers_every_learner(app):
    seed(app, attempts=[attempt_row(A1_, "at-1", float(i), 10.0, 10, user=f"u{i:02}") for i in range(7)])
    summary = backfill_scores(app, chunk_learners=2)
    assert (summary.rows_examined, summary.rows_created) == (7, 7)
    assert [r["aggregates"][f"score:{A1_}"] for r in snapshot(app)] == [float(i) for i in range(7)]


def test_s6_group_cache_is_invalidated_for_changed_users_only_after_a_real_run(app, monkeypatch):
    seed(app, **legacy_fixture())
    calls: list[set[str]] = []
    monkeypatch.setattr(
        "learnagg.batch.migrate_scores.group_cache.invalidate_for_users",
        lambda store, cache, users: calls.append(users),
    )
    migrate_scores(app, dry_run=True)
    assert calls == []
    migrate_scores(app)
    assert set().union(*calls) == {U, "user-2", "user-3"}
    calls.clear()
    migrate_scores(app)
    assert calls == []
