"""`learnagg report progress|response` and `learnagg exhaust run` (in-process): files, summaries, one-line errors."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnagg import bootstrap
from learnagg.adapters.objectstore import open_store
from learnagg.entrypoints.cli import main
from learnagg.jobs.archival import ArchivalScope, run_archive
from learnagg.jobs.archival_delete import run_delete
from learnagg.jobs.progress_exhaust import write_progress_report
from learnagg.jobs.response_exhaust import write_response_report
from learnagg.settings import Settings
from tests.conftest import T
from tests.jobs.test_exhaust_runner import BATCH, COURSE, row, submit, world


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[bootstrap.App]:
    """The exhaust test data, a blob folder and the working folder, named through the environment."""
    blob_dir = tmp_path / "blobs"
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(blob_dir))
    monkeypatch.chdir(tmp_path)
    app = bootstrap.build(Settings(database_url=database_url, blob_url=str(blob_dir)), clock=lambda: T)
    world(app)
    yield app
    app.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def expected(app: bootstrap.App, report: str) -> str:
    out = io.StringIO()
    (write_progress_report if report == "progress" else write_response_report)(app, BATCH, out)
    return out.getvalue()


@pytest.mark.parametrize("report", ["progress", "response"])
def test_report_writes_one_csv_to_the_out_folder(env, capsys, tmp_path, report):
    code, out, err = run(capsys, "report", report, "--batch-id", BATCH, "--out", str(tmp_path / "out"))
    [path] = list((tmp_path / "out").glob(f"{BATCH}_{report}_*.csv"))
    assert (code, err) == (0, "")
    assert out == f"{path}\t{expected(env, report).count(chr(10)) - 1} rows\n"
    assert path.read_text(encoding="utf-8") == expected(env, report)


def test_response_report_reads_archived_attempts(env, capsys, tmp_path):
    before = expected(env, "response")
    blobs = open_store(env.settings.blob_url)
    run_archive(env, blobs, ArchivalScope(BATCH, COURSE))
    run_delete(env, blobs, ArchivalScope(BATCH, COURSE))
    assert expected(env, "response").count("\n") == 1  # no live attempts left
    assert run(capsys, "report", "response", "--batch-id", BATCH)[0] == 0
    [path] = list(tmp_path.glob(f"{BATCH}_response_*.csv"))
    assert path.read_text(encoding="utf-8") == before


def test_unknown_batch_is_a_one_line_error_and_writes_nothing(env, capsys, tmp_path):
    code, out, err = run(capsys, "report", "progress", "--batch-id", "nope")
    assert (code, out) == (1, "")
    assert err.startswith("learnagg: error: batch 'nope' does not exist") and err.count("\n") == 1
    assert not list(tmp_path.glob("*.csv"))


def test_exhaust_run_processes_pending_requests(env, capsys):
    progress = submit(env, {"batchId": BATCH}, tag="p")
    response = submit(env, {"batchId": BATCH}, dataset="response-exhaust", tag="r")
    code, out, _ = run(capsys, "exhaust", "run", "--job", "response", "--json")
    summary = json.loads(out)
    assert (code, summary["requests"], summary["succeeded"], summary["failures"]) == (0, 1, 1, [])
    assert (row(env, response)["status"], row(env, progress)["status"]) == ("SUCCESS", "SUBMITTED")
    code, out, _ = run(capsys, "exhaust", "run")
    assert code == 0 and "succeeded" in out
    assert row(env, progress)["status"] == "SUCCESS"


def test_exhaust_run_reports_failed_requests_on_stderr(env, capsys):
    failed = submit(env, {"batchId": "nope"})
    code, _, err = run(capsys, "exhaust", "run")
    assert code == 0
    assert err == f"FAILED {failed}: No data found\n"
