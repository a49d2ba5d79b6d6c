"""`learnagg migrate scores` and `learnagg migrate agg-to-aggregates` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import user_activity_agg
from learnagg.entrypoints.cli import main
from tests.batch.test_migrate_scores import A1_, B2, legacy_fixture, seed


@pytest.fixture
def url(database_url, monkeypatch, tmp_path):
    """The test database, named by the environment as a user would; run from an empty folder (no config file)."""
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    store = Store(database_url)
    seed(store, **legacy_fixture())
    store.dispose()
    return database_url


def rows(url: str) -> list[dict]:
    store = Store(url)
    t = user_activity_agg
    with store.read() as conn:
        found = [dict(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns)).mappings()]
    store.dispose()
    return found


def run_json(capsys, *args: str) -> dict:
    assert main(["migrate", *args, "--json"]) == 0
    out = capsys.readouterr().out
    [line] = out.splitlines()
    return json.loads(line)


def test_scores_prints_what_changed_and_a_second_run_changes_nothing(url, capsys):
    first = run_json(capsys, "scores")
    assert first["command"] == "migrate scores" and first["dry_run"] is False and first["batch_ids"] is None
    assert first["steps"]["agg-to-aggregates"]["rows_changed"] == 3
    assert first["steps"]["backfill"] == {
        "rows_examined": 3,
        "rows_changed": 3,
        "rows_created": 1,
        "keys_added": 6,
        "keys_updated": 3,
    }
    after = rows(url)
    second = run_json(capsys, "scores")
    assert all(step["rows_changed"] == 0 for step in second["steps"].values())
    assert rows(url) == after


def test_dry_run_writes_nothing_and_reports_the_same_counts(url, capsys):
    before = rows(url)
    dry = run_json(capsys, "scores", "--dry-run")
    assert rows(url) == before
    real = run_json(capsys, "scores")
    assert dry["dry_run"] is True
    assert dry["steps"] == real["steps"]


def test_agg_to_aggregates_runs_step_1_only(url, capsys):
    summary = run_json(capsys, "agg-to-aggregates")
    assert list(summary["steps"]) == ["agg-to-aggregates"]
    assert summary["steps"]["agg-to-aggregates"]["keys_added"] == 5
    course_rows = [r for r in rows(url) if r["user_id"] == "user-1" and r["activity_id"] == "do_course"]
    assert course_rows[0]["aggregates"][f"score:{A1_}"] == 5.0  # the legacy int, not yet replaced by attempts
    assert not any(r["user_id"] == "user-3" for r in rows(url))  # no backfill: no row created


def test_batch_id_limits_the_run(url, capsys):
    summary = run_json(capsys, "scores", "--batch-id", B2)
    assert summary["batch_ids"] == [B2]
    assert [s["rows_examined"] for s in summary["steps"].values()] == [1, 1]
    changed = {(r["user_id"], r["context_id"]) for r in rows(url) if r["agg_last_updated"] and r["aggregates"]}
    assert changed == {("user-2", f"cb:{B2}"), ("user-1", "cb:batch-1")}  # user-1 keeps only its old completedCount
    [user1] = [r for r in rows(url) if r["user_id"] == "user-1" and r["activity_id"] == "do_course"]
    assert user1["aggregates"] == {"completedCount": 2.5}


def test_human_summary_is_a_table(url, capsys):
    assert main(["migrate", "scores", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "rows examined" in out
    assert "agg-to-aggregates" in out and "backfill" in out


def test_blank_batch_id_is_a_one_line_error(url, capsys):
    assert main(["migrate", "scores", "--batch-id", " "]) == 1
    assert capsys.readouterr().err.strip() == "learnagg: error: --batch-id must not be blank"


def test_uninitialised_database_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", "agg-to-aggregates"]) == 1
    assert "run 'learnagg init' first" in capsys.readouterr().err


def test_console_script_runs_without_a_terminal(tmp_path):
    # The progress bar is on stderr and hidden without a terminal; stdout holds only the summary.
    url = f"sqlite:///{tmp_path}/cli.db"
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()"]
    assert subprocess.run([*cmd, "init"], env=env, capture_output=True, timeout=120, cwd=tmp_path).returncode == 0
    seed(Store(url), **legacy_fixture())
    done = subprocess.run(
        [*cmd, "migrate", "scores", "--json"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"]["backfill"]["rows_created"] == 1


def test_a_terminal_gets_one_bar_per_step(url, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    assert main(["migrate", "scores", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["steps"]["backfill"]["rows_examined"] == 3
    assert "legacy agg ints" in err and "3/3 rows" in err
    assert "score backfill" in err and "3/3 learners" in err


def test_chunk_sizes_default_to_the_settings_and_keep_their_bounds(url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    assert main(["migrate", "scores", "--help"]) == 0
    text = capsys.readouterr().out
    assert "migration.chunk_rows" in text and "LEARNAGG_MIGRATION__CHUNK_LEARNERS" in text
    monkeypatch.setenv("LEARNAGG_MIGRATION__CHUNK_ROWS", "1")
    monkeypatch.setenv("LEARNAGG_MIGRATION__CHUNK_LEARNERS", "1")
    assert run_json(capsys, "scores")["steps"]["backfill"]["rows_changed"] == 3
    assert main(["migrate", "scores", "--chunk-rows", "0"]) == 2
    assert main(["migrate", "scores", "--chunk-learners", "100001"]) == 2
    assert "--chunk-learners" in capsys.readouterr().err
