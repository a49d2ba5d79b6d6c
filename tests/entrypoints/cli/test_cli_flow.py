"""The CLI as a user runs it: init → load → publish → worker → inspect reproduces SPEC §3.6; errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES, course

COURSE = "do_2128415652377067521125"
USER = "ff1c4bdf-27e2-49bc-a53f-6e304bb3a87f"


def learnagg(*args: str, url: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", *args]
    return subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd)


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def empty_url(request, tmp_path, pg_server_if_needed) -> str:
    return pg_server_if_needed or f"sqlite:///{tmp_path}/cli.db"


@pytest.fixture(params=["sqlite", "postgres"])
def pg_server_if_needed(request) -> str | None:
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"cli_{abs(hash(request.node.name)) % 10**8}")


def test_golden_flow_through_the_cli(empty_url, tmp_path):
    courses = tmp_path / "courses.jsonl"
    courses.write_text(json.dumps(course(COURSE, ["do_212686723743318016173"])) + "\n")
    events = tmp_path / "assess.jsonl"
    events.write_text(json.dumps(json.loads((FIXTURES / "golden-assess-event.json").read_text())) + "\n")

    assert learnagg("init", url=empty_url).returncode == 0
    assert learnagg("init", url=empty_url).returncode == 0
    assert learnagg("load", "courses", str(courses), url=empty_url).returncode == 0
    assert learnagg("publish", "assess", str(events), url=empty_url).returncode == 0
    [summary] = lines(learnagg("worker", "--until-idle", url=empty_url))
    assert summary["jobs"]["assessment-aggregator"]["batch-success-count"] == 1

    [agg] = lines(learnagg("inspect", "user-activity-agg", "--activity-id", COURSE, url=empty_url))
    assert agg["aggregates"] == {
        "attempts_count:do_212686723743318016173": 1.0,
        "max_score:do_212686723743318016173": 2.0,
        "score:do_212686723743318016173": 1.33,
    }
    assert agg["context_id"] == "cb:012846671379595264119" and agg["agg"] is None
    [row] = lines(learnagg("inspect", "assessment", "--course-id", COURSE, "--user-id", USER, url=empty_url))
    assert (row["total_score"], row["total_max_score"], row["grand_total"]) == (1.33, 2.0, "1.33/2.0")
    assert isinstance(row["created_on"], int)
    [request] = lines(learnagg("inspect", "events", "--topic", "certificate", url=empty_url))
    assert request["edata"]["attemptId"] == "8cd87e24df268ad09a8b0060c0a40271"
    assert lines(learnagg("inspect", "events", "--topic", "telemetry.assess.failed", url=empty_url)) == []

    # stdin publishing and a bad event: it goes to the failed topic, the worker exits 0
    assert learnagg("publish", "assess", "-", url=empty_url, stdin="not json\n").returncode == 0
    assert learnagg("worker", "--until-idle", url=empty_url).returncode == 0
    [bad] = lines(learnagg("inspect", "events", "--topic", "telemetry.assess.failed", url=empty_url))
    assert bad["raw"] == "not json" and bad["metadata"]["validation_error"] == "event is not a JSON object"


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    return err[0]


def test_cli_errors_are_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}/e.db"
    assert "run 'learnagg init' first" in _one_line_error(learnagg("worker", "--until-idle", url=url))
    assert learnagg("init", url=url).returncode == 0
    assert "no such file" in _one_line_error(learnagg("publish", "assess", str(tmp_path / "missing"), url=url))
    assert "No such option" in _one_line_error(learnagg("worker", "--bogus", url=url))
    assert "unknown job" in _one_line_error(learnagg("worker", "--job", "nope", "--until-idle", url=url))
    bad_course = tmp_path / "c.jsonl"
    bad_course.write_text('{"identifier": "c1", "children": [{"name": "no id"}]}\n')
    assert f"{bad_course}:1:" in _one_line_error(learnagg("load", "courses", str(bad_course), url=url))
    assert "cannot open the database" in _one_line_error(
        learnagg("worker", "--until-idle", url="postgresql://nobody@127.0.0.1:1/none")
    )
    assert "unsupported database URL" in _one_line_error(learnagg("init", url="mysql://x/y"))


def test_worker_stops_cleanly_on_sigterm(tmp_path):
    import signal
    import time

    url = f"sqlite:///{tmp_path}/w.db"
    assert learnagg("init", url=url).returncode == 0
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "worker"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    assert proc.poll() is None, "the worker must keep running without --until-idle"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["handled"] == 0
