"""The ingest benchmark's references (bare write, parse + write) and its per-phase table, at tiny sizes."""

from __future__ import annotations

from functools import partial

import orjson
import pytest
from sqlalchemy import func, select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.bench.ingest import IngestBenchConfig, bench_events, run_ingest_bench
from learnagg.bench.ingest_reference import attempt_row, parse_write, write_transactions
from learnagg.domain.assess_event import parse_assessment_event
from learnagg.errors import LearnaggError
from learnagg.streams import phases


def _activity(user: str) -> dict[str, object]:
    return {"activity_type": "Course", "activity_id": "c", "context_id": "cb:b", "user_id": user}


def test_write_transactions_put_each_learners_aggregate_row_with_its_first_attempt():
    attempts = [{"course_id": "c", "batch_id": "b", "user_id": u} for u in ("u1", "u2", "u1", "u3")]
    activity = [_activity(u) for u in ("u1", "u2", "u3", "u4")]
    groups = write_transactions(attempts, activity, 2)
    assert [[r["user_id"] for r in rows] for _, rows in groups] == [["u1", "u2"], ["u3"], ["u4"]]
    assert [len(chunk) for chunk, _ in groups] == [2, 2, 0]


def test_attempt_row_holds_the_answers_in_input_order_and_their_plain_sums():
    [raw] = bench_events(1, 3)
    event = parse_assessment_event(raw)
    row = attempt_row(event, 42)
    assert [q["id"] for q in row["question"]] == [q.id for q in event.questions]
    assert row["total_score"] == sum(q.score for q in event.questions)
    assert row["total_max_score"] == 3.0 and row["grand_total"].endswith("/3.0")
    assert (row["created_on"], row["updated_on"], row["last_attempted_on"]) == (42, 42, raw["assessmentTs"])


def test_parse_write_writes_every_event_and_times_each_step(tmp_path):
    payloads = [orjson.dumps(e).decode() for e in bench_events(5, 2)]
    activity = [_activity("u-unseen")]
    times, count = parse_write(
        f"sqlite:///{tmp_path}/pw.db", [payloads[:2], payloads[2:]], activity, parse_assessment_event, 1
    )
    assert count == 5 and times.total == times.decode + times.parse + times.write > 0
    store = Store(f"sqlite:///{tmp_path}/pw.db")
    try:
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one() == 5
            assert conn.execute(select(func.count()).select_from(user_activity_agg)).scalar_one() == 1
    finally:
        store.dispose()


def test_parse_write_refuses_an_event_that_does_not_parse(tmp_path):
    parse = partial(parse_assessment_event, max_questions=1)
    payloads = [orjson.dumps(e).decode() for e in bench_events(1, 2)]
    with pytest.raises(LearnaggError, match="does not parse"):
        parse_write(f"sqlite:///{tmp_path}/pw.db", [payloads], [], parse, 1)


def test_lap_is_a_no_op_unless_recording():
    phases.lap(phases.FETCH)  # nothing is recording: nothing to add to
    with phases.recording() as times:
        phases.lap(None)
        phases.lap(phases.FETCH)
        phases.lap(phases.DECODE)
    phases.lap(phases.DECODE)
    assert set(times.seconds) == {phases.FETCH, phases.DECODE}
    assert all(seconds >= 0 for seconds in times.seconds.values())


def test_the_sqlite_run_reports_both_ratios_and_the_time_per_phase():
    result = run_ingest_bench(IngestBenchConfig("sqlite", attempts=40, questions=3, batch_size=16))
    assert result.assessment_rows == 40 and result.activity_rows == 10
    assert result.parse_write_attempts_per_s > 0 and result.parse_write_ratio > 0
    assert set(result.parse_write_steps) == {"decode", "parse", "write"}
    assert list(result.aggregator_phases) == [*phases.ORDER, "other"]
    assert sum(result.aggregator_phases.values()) == pytest.approx(result.aggregator_seconds, abs=0.01)
    assert result.aggregator_phases[phases.UPSERT] > 0 and result.aggregator_phases[phases.DECODE] > 0
    labels = [label for label, _ in result.rows()]
    assert "ratio aggregator / (parse + write)" in labels and "aggregator: upsert" in labels
