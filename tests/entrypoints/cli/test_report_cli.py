"""`learnagg report progress|response` and `learnagg exhaust run` (in-process): files, summaries, one-line errors."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnagg import bootstrap
from learnagg.adapters.objectstore import open_store
from learnagg.adapters.store.tables import course_batch, user_enrolments
from learnagg.batch.archival import ArchivalScope, run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.progress_exhaust import write_progress_report
from learnagg.batch.response_exhaust import write_response_report
from learnagg.entrypoints.cli import main
from learnagg.entrypoints.cli.plural import counted
from learnagg.settings import Settings
from tests.batch.test_exhaust_runner import BATCH, COURSE, ENROLLED, LEARNERS, insert_rows, row, submit, world
from tests.conftest import T


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


@pytest.mark.parametrize(("learners", "count"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows")])
def test_report_counts_rows_in_the_singular_or_plural(env, capsys, tmp_path, learners, count):
    """Regression: a one-learner batch printed "1 rows"."""
    insert_rows(env, course_batch, {"courseid": COURSE, "batchid": "b-small", "name": "Small", "status": 1})
    for user in LEARNERS[:learners]:
        enrolment = {"active": True, "enrolled_date": ENROLLED, "status": 1}
        insert_rows(env, user_enrolments, {"userid": user, "courseid": COURSE, "batchid": "b-small", **enrolment})
    code, out, err = run(capsys, "report", "progress", "--batch-id", "b-small", "--out", str(tmp_path))
    [path] = list(tmp_path.glob("b-small_progress_*.csv"))
    assert (code, err, out) == (0, "", f"{path}\t{count}\n")
    assert path.read_text(encoding="utf-8").count("\n") == learners + 1


def test_counted_nouns():
    assert [counted(n, "row") for n in (0, 1, 2, 1000)] == ["0 rows", "1 row", "2 rows", "1000 rows"]
    assert counted(1, "batch", "batches") == "1 batch" and counted(3, "batch", "batches") == "3 batches"


def test_an_out_folder_that_cannot_be_made_is_a_one_line_error(env, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, err = run(capsys, "report", "progress", "--batch-id", BATCH, "--out", str(blocker))
    assert (code, out) == (1, "")
    assert err.startswith(f"learnagg: error: --out '{blocker}': cannot create the folder") and err.count("\n") == 1
    assert blocker.read_text() == "not a folder"


def test_a_report_file_that_cannot_be_written_is_a_one_line_error_and_is_kept(env, capsys, tmp_path):
    code, out, _ = run(capsys, "report", "progress", "--batch-id", BATCH, "--out", str(tmp_path))
    [path] = list(tmp_path.glob(f"{BATCH}_progress_*.csv"))
    path.unlink()
    path.mkdir()  # the report's file name is taken by a folder
    code, out, err = run(capsys, "report", "progress", "--batch-id", BATCH, "--out", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.startswith(f"learnagg: error: {path}: cannot write") and err.count("\n") == 1
    assert path.is_dir()


def test_a_batch_id_with_a_path_separator_never_writes_outside_out(env, capsys, tmp_path):
    insert_rows(env, course_batch, {"courseid": COURSE, "batchid": "../escape", "name": "Odd", "status": 1})
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "report", "progress", "--batch-id", "../escape", "--out", str(out_dir))
    assert (code, out) == (1, "")
    assert err == "learnagg: error: batch '../escape': its id cannot name a file\n"
    assert not list(tmp_path.rglob("*.csv"))


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


def test_a_batch_id_with_nul_is_an_unknown_batch(env, capsys):
    """Regression: on PostgreSQL this was 'database error: … cannot contain NUL'."""
    code, out, err = run(capsys, "report", "progress", "--batch-id", "a\x00b")
    assert (code, out, err) == (1, "", "learnagg: error: batch 'a\\x00b' does not exist\n")


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
