"""`learnagg migrate scores`, `agg-to-aggregates` and `activity-agg` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import activity_agg as activity_agg_table
from learnagg.adapters.store.tables import user_activity_agg, user_enrolments
from learnagg.domain.platform import EnrolmentRecord, NewBatch
from learnagg.entrypoints.cli import main
from learnagg.services.batches import create_batches
from learnagg.services.enrolments import load_enrolments
from learnagg.settings import Settings
from tests.batch.test_migrate_scores import A1_, B2, legacy_fixture, seed
from tests.support import course, load


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


# `learnagg migrate activity-agg`: the per-batch table rebuilt from user_enrolments.

COURSE_ID = "do_agg"


def _agg_fixture(url: str) -> None:
    """Two batches of one course (b-1: two active enrolments, one completed, and one inactive; b-2: none),
    an enrolment in a batch that was never created, and then an empty activity_agg table plus a stale row."""
    la = bootstrap.build(Settings(database_url=url))
    try:
        load(la, course(COURSE_ID, ["do_l1"]))
        with la.store.write() as conn:
            batches = [NewBatch(COURSE_ID, b, b, date(2023, 1, 1), status=1) for b in ("b-1", "b-2")]
            create_batches(conn, la.store.dialect, batches, created_by=None, now=la.clock(), zone="UTC")
            records = [
                EnrolmentRecord(user_id="u-1", course_id=COURSE_ID, batch_id="b-1"),
                EnrolmentRecord(user_id="u-2", course_id=COURSE_ID, batch_id="b-1"),
                EnrolmentRecord(user_id="u-3", course_id=COURSE_ID, batch_id="b-1"),
            ]
            load_enrolments(conn, la.store.dialect, records, now=la.clock(), zone="UTC")
            gone = {"userid": "u-1", "courseid": COURSE_ID, "batchid": "b-gone", "active": True, "status": 1}
            conn.execute(user_enrolments.insert(), [gone])  # as an import of a partial export leaves it
            e = user_enrolments.c
            b1 = (e.courseid == COURSE_ID) & (e.batchid == "b-1")
            conn.execute(user_enrolments.update().where(b1, e.userid == "u-1").values(status=2))
            conn.execute(user_enrolments.update().where(b1, e.userid == "u-3").values(active=False))
            conn.execute(activity_agg_table.delete())
            stale = {"activity_type": "Course", "activity_id": "do_old", "context_id": "cb:b-old"}
            conn.execute(activity_agg_table.insert(), [{**stale, "agg": {"enrolledCount": 1.0}}])
    finally:
        la.close()


def agg_rows(url: str) -> dict[tuple[str, str], dict]:
    store = Store(url)
    a = activity_agg_table.c
    with store.read() as conn:
        found = {(r.activity_id, r.context_id): r.agg for r in conn.execute(select(activity_agg_table))}
        assert all(r == "Course" for r in conn.execute(select(a.activity_type)).scalars())
    store.dispose()
    return found


@pytest.fixture
def agg_url(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    _agg_fixture(database_url)
    return database_url


def test_activity_agg_counts_then_a_second_run_changes_nothing(agg_url, capsys):
    first = run_json(capsys, "activity-agg")
    assert first == {
        "command": "migrate activity-agg",
        "dry_run": False,
        "examined": 3,
        "created": 3,
        "changed": 0,
        "removed": 1,
    }
    assert agg_rows(agg_url) == {
        (COURSE_ID, "cb:b-1"): {"enrolledCount": 2.0, "completedCount": 1.0, "completionPercentage": 50.0},
        (COURSE_ID, "cb:b-2"): {"enrolledCount": 0.0, "completedCount": 0.0, "completionPercentage": 0.0},
        (COURSE_ID, "cb:b-gone"): {"enrolledCount": 1.0, "completedCount": 0.0, "completionPercentage": 0.0},
    }
    second = run_json(capsys, "activity-agg")
    assert (second["examined"], second["created"], second["changed"], second["removed"]) == (3, 0, 0, 0)


def test_activity_agg_corrects_a_wrong_row(agg_url, capsys):
    run_json(capsys, "activity-agg")
    store = Store(agg_url)
    a = activity_agg_table.c
    with store.write() as conn:
        wrong = {"enrolledCount": 9.0, "completedCount": 0.0, "completionPercentage": 0.0}
        conn.execute(activity_agg_table.update().where(a.context_id == "cb:b-1").values(agg=wrong))
    store.dispose()
    summary = run_json(capsys, "activity-agg")
    assert (summary["created"], summary["changed"], summary["removed"]) == (0, 1, 0)
    assert agg_rows(agg_url)[(COURSE_ID, "cb:b-1")]["enrolledCount"] == 2.0


def test_activity_agg_dry_run_writes_nothing_and_counts_the_same(agg_url, capsys):
    before = agg_rows(agg_url)
    dry = run_json(capsys, "activity-agg", "--dry-run")
    assert agg_rows(agg_url) == before
    real = run_json(capsys, "activity-agg")
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {k: v for k, v in real.items() if k != "dry_run"}


def test_activity_agg_human_summary_is_a_table(agg_url, capsys):
    assert main(["migrate", "activity-agg", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the title wraps at the table's width
    assert "dry run: nothing written" in out
    assert "examined" in out and "created" in out and "removed" in out


def test_activity_agg_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", "activity-agg", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("learnagg: error: ") and "run 'learnagg init' first" in line
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/missing-folder/x.db")
    assert main(["migrate", "activity-agg"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("learnagg: error: ")
    assert main(["migrate", "activity-agg", "--batch-id", "b-1"]) == 2  # not an option of this command
    assert "No such option" in capsys.readouterr().err
