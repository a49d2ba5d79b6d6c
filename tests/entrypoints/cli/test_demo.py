"""`learnagg demo` and `learnagg bench ingest`, run in-process through the CLI's `main`."""

from __future__ import annotations

import json
import re

import pytest

from learnagg.bench.demo_data import generate_demo
from learnagg.domain.assess_event import parse_assessment_event
from learnagg.domain.hierarchy import parse_hierarchy
from learnagg.domain.scoring import score_attempt
from learnagg.entrypoints.cli import main

SCORE_CELL = re.compile(r"\d+\.\d+/\d+\.\d+ \(\d+\)")


def _run_demo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    """Run `learnagg demo`; return (table, summary line)."""
    code = main(["demo", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    table, _, summary = out.rstrip("\n").rpartition("\n")
    return table, summary


def test_demo_data_is_deterministic_and_matches_the_brief():
    data = generate_demo()
    assert data == generate_demo()
    tree = parse_hierarchy(data.hierarchy)
    assert tree.name == "Foundations of Data" and len(tree.units()) == 2 and tree.leaf_nodes_count == 6
    assert sorted(c.content_id for c in tree.contents.values() if c.content_type == "SelfAssess") == sorted(
        a.content_id for a in data.assessments
    )
    assert all(tree.contents[a.content_id].total_questions == a.total_questions for a in data.assessments)
    assert len(data.learners) == 5 and len({lr.name for lr in data.learners}) == 5
    per_learner: dict[tuple[str, str], int] = {}
    for raw in data.attempt_events:
        key = (raw["userId"], raw["contentId"])
        per_learner[key] = per_learner.get(key, 0) + 1
        assert 3 <= len(raw["events"]) <= 5
        event = parse_assessment_event(raw)
        # One question is answered twice: de-duplication keeps one answer per question.
        assert len(score_attempt(event.questions).questions) == len(event.questions) - 1
    assert len(per_learner) == 5 * 3 and set(per_learner.values()) <= {1, 2, 3}


def test_demo_learner_data_does_not_depend_on_the_number_of_learners():
    few, more = generate_demo(2), generate_demo(4)
    mine = [e for e in more.attempt_events if e["userId"] in {lr.user_id for lr in few.learners}]
    assert mine == list(few.attempt_events)


def test_demo_prints_best_scores_and_is_rerunnable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    data = generate_demo()

    first, summary = _run_demo(capsys)
    for learner in data.learners:
        assert learner.name in first
        assert learner.user_id in first
    assert len(SCORE_CELL.findall(first)) == 5 * 3
    assert f"{len(data.attempt_events)} event(s) processed ({len(data.attempt_events)} aggregated" in summary
    assert "0 failed" in summary

    second, summary = _run_demo(capsys)
    assert second == first
    assert f"0 aggregated, {len(data.attempt_events)} skipped" in summary


def test_demo_cells_come_from_the_stored_aggregates(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    table, _ = _run_demo(capsys, "--learners", "1")
    assert main(["inspect", "user-activity-agg", "--activity-id", "do_foundations_of_data"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    agg = row["aggregates"]
    for assessment in generate_demo(1).assessments:
        c = assessment.content_id
        cell = f"{agg[f'score:{c}']!r}/{agg[f'max_score:{c}']!r} ({int(agg[f'attempts_count:{c}'])})"
        assert cell in table


def test_demo_refuses_zero_learners(capsys):
    assert main(["demo", "--learners", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("learnagg: error:") and err.count("\n") == 1


def test_bench_ingest_sqlite_json(capsys, monkeypatch):
    monkeypatch.delenv("LEARNAGG_WORKER__BATCH_SIZE", raising=False)
    code = main(["bench", "ingest", "--backend", "sqlite", "--attempts", "200", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    [line] = out.splitlines()
    result = json.loads(line)
    assert set(result) >= {
        "backend",
        "attempts",
        "questions",
        "batch_size",
        "aggregator_attempts_per_s",
        "bare_write_attempts_per_s",
        "ratio",
        "cores",
        "memory_gib",
        "python",
        "sqlite_version",
        "postgres_version",
    }
    assert [result[k] for k in ("backend", "attempts", "questions", "batch_size")] == ["sqlite", 200, 10, 500]
    assert result["aggregator_attempts_per_s"] > 0 and result["bare_write_attempts_per_s"] > 0
    assert result["ratio"] > 0
    assert (result["assessment_rows"], result["activity_rows"]) == (200, 50)


def test_bench_ingest_default_batch_size_comes_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("LEARNAGG_WORKER__BATCH_SIZE", "7")
    assert main(["bench", "ingest", "--backend", "sqlite", "--attempts", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["batch_size"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "mysql"], "unknown backend 'mysql'"),
        (["--attempts", "0"], "--attempts must be between"),
        (["--batch-size", "0"], "--batch-size must be between"),
        (["--database-url", "postgresql://u@h/db"], "--database-url is for --backend postgres"),
    ],
)
def test_bench_ingest_bad_arguments_give_one_line(capsys, args, message):
    assert main(["bench", "ingest", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("learnagg: error:") and message in err and err.count("\n") == 1
