"""`learnagg import TABLE FILE`: a summary line, --json, one-line FILE:LINE errors, stdin, on both backends."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import user_activity_agg
from learnagg.entrypoints.cli import main

EXPORT = (
    "activity_type,activity_id,user_id,context_id,agg,aggregates\n"
    "Course,do_c1,u1,cb:b1,{'completedCount': 2},\"{'score:do_1': 1.5, 'max_score:do_1': 2}\"\n"
    "Course,do_c1,u2,cb:b1,{'completedCount': 1},\n"
)


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test database, through `LEARNAGG_DATABASE_URL`."""
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    assert main(["init"]) == 0
    yield database_url


def stored(url: str) -> list[dict]:
    store = Store(url)
    try:
        with store.read() as conn:
            stmt = select(user_activity_agg).order_by(user_activity_agg.c.user_id)
            return [dict(r) for r in conn.execute(stmt).mappings()]
    finally:
        store.dispose()


def test_import_prints_a_summary_and_json(url, tmp_path: Path, capsys):
    file = tmp_path / "uaa.csv"
    file.write_text(EXPORT)
    assert main(["import", "user_activity_agg", str(file), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert {k: summary[k] for k in ("table", "header", "records", "rows_written", "ignored_columns")} == {
        "table": "user_activity_agg",
        "header": True,
        "records": 2,
        "rows_written": 2,
        "ignored_columns": [],
    }
    assert summary["columns"] == ["activity_type", "activity_id", "user_id", "context_id", "agg", "aggregates"]
    assert f"imported 2 record(s) into user_activity_agg (2 row(s) written) from {file}" in err
    assert [(r["user_id"], r["aggregates"]) for r in stored(url)] == [
        ("u1", {"score:do_1": 1.5, "max_score:do_1": 2.0}),
        ("u2", None),
    ]


def test_a_bad_line_is_a_one_line_error_and_nothing_is_written(url, tmp_path: Path, capsys):
    file = tmp_path / "bad.csv"
    file.write_text(EXPORT + "Course,do_c1,u3,cb:b1,{'completedCount': 1.5},\n")
    assert main(["import", "user_activity_agg", str(file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"learnagg: error: {file}:4: column agg: expected an integer, found the number 1.5 at offset 19"]
    assert stored(url) == []


def test_unknown_table_is_a_usage_error(url, tmp_path: Path, capsys):
    assert main(["import", "users", str(tmp_path / "x.csv")]) == 2
    assert "'users' is not one of" in capsys.readouterr().err


def test_headerless_file_with_columns_option(url, tmp_path: Path, capsys):
    file = tmp_path / "cols.csv.gz"
    file.write_bytes(gzip.compress(b"u7,Course,do_c1,cb:b1,{'completedCount': 3}\n"))
    args = ["import", "user_activity_agg", str(file), "--columns", "user_id,activity_type,activity_id,context_id,agg"]
    assert main(args) == 0
    assert [(r["user_id"], r["agg"]) for r in stored(url)] == [("u7", {"completedCount": 3})]


def test_the_installed_command_reads_stdin(database_url):
    env = {**os.environ, "LEARNAGG_DATABASE_URL": database_url}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "import", "user_activity_agg", "-"]
    done = subprocess.run(cmd, env=env, input=EXPORT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 2 record(s)" in done.stderr
    bad = subprocess.run(
        cmd,
        env=env,
        input="activity_type,activity_id,user_id,context_id,agg\nCourse,c,u,cb:b,{'a'\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "learnagg: error: -:2: column agg: expected ':', found the end of the text at offset 4"
    assert "Traceback" not in bad.stderr


def test_a_terminal_gets_a_bar_of_the_file_bytes(url, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    file = tmp_path / "uaa.csv"
    file.write_text(EXPORT)
    assert main(["import", "user_activity_agg", str(file), "--chunk-rows", "1"]) == 0
    err = capsys.readouterr().err
    size = f"{len(EXPORT.encode())} bytes"
    assert "import user_activity_agg" in err and f"{size}/{size}" in err
    assert "imported 2 record(s)" in err


def test_chunk_rows_defaults_to_the_setting_and_keeps_its_bounds(url, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per option
    assert main(["import", "--help"]) == 0
    assert "imports.chunk_rows" in capsys.readouterr().out
    file = tmp_path / "uaa.csv"
    file.write_text(EXPORT)
    monkeypatch.setenv("LEARNAGG_IMPORTS__CHUNK_ROWS", "1")
    assert main(["import", "user_activity_agg", str(file)]) == 0
    assert len(stored(url)) == 2
    assert main(["import", "user_activity_agg", str(file), "--chunk-rows", "0"]) == 2
    assert "--chunk-rows" in capsys.readouterr().err
