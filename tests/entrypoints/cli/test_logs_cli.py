"""Logging is set up once for every command (docs/operations.md "Logs"): records on stderr, stdout untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES, course

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"


def learnagg(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", *args]
    full_env = {**os.environ, "LEARNAGG_DATABASE_URL": url, **env}
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def published(tmp_path: Path) -> str:
    """A database with one course and the golden assessment event waiting for the worker."""
    url = f"sqlite:///{tmp_path}/logs.db"
    courses = tmp_path / "courses.jsonl"
    courses.write_text(json.dumps(course(COURSE, [CONTENT])) + "\n")
    events = tmp_path / "assess.jsonl"
    events.write_text(json.dumps(json.loads((FIXTURES / "golden-assess-event.json").read_text())) + "\n")
    for args in (("init",), ("load", "courses", str(courses)), ("publish", "assess", str(events))):
        assert learnagg(*args, url=url).returncode == 0
    return url


def test_worker_writes_json_lines_on_stderr(published: str) -> None:
    result = learnagg("worker", "--until-idle", url=published, LEARNAGG_LOG__FORMAT="json")
    assert result.returncode == 0, result.stderr
    [summary] = [json.loads(line) for line in result.stdout.splitlines()]
    assert summary["handled"] >= 1
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    messages = [(r["level"], r["logger"], r["msg"]) for r in records]
    assert ("INFO", "learnagg.worker", f"worker stopped after {summary['handled']} event(s)") in messages
    assert any(
        m.startswith("worker running assessment-aggregator, ") and m.endswith(" until idle") for *_, m in messages
    )


def test_text_format_and_level(published: str) -> None:
    text = learnagg("worker", "--until-idle", url=published, LEARNAGG_LOG__FORMAT="text")
    assert text.returncode == 0 and " INFO learnagg.worker: worker stopped after " in text.stderr
    assert not text.stderr.lstrip().startswith("{")
    quiet = learnagg("worker", "--until-idle", url=published, LEARNAGG_LOG__LEVEL="warning")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_bad_log_setting_is_one_error_line(published: str) -> None:
    result = learnagg("worker", "--until-idle", url=published, LEARNAGG_LOG__FORMAT="xml")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("learnagg: error: ")
