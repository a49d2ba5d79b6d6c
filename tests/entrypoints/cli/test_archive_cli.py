"""`learnagg archive run|delete` and `learnagg bench archive` (in-process): summaries, scopes, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnagg import bootstrap
from learnagg.entrypoints.cli import main
from learnagg.settings import Settings
from tests.batch.test_archival import BATCH, COURSE, sample, seed
from tests.conftest import T


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A database holding the sample attempts, and a blob folder, named through the environment."""
    blob_dir = tmp_path / "blobs"
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(blob_dir))
    app = bootstrap.build(Settings(database_url=database_url), clock=lambda: T)
    seed(app, sample())
    app.close()
    yield blob_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_and_delete_print_json_summaries(env, capsys):
    code, out, _ = run(capsys, "archive", "run", "--json")
    summary = json.loads(out)
    assert code == 0
    assert {k: summary[k] for k in ("mode", "partitions", "archived", "failed", "rows")} == {
        "mode": "archive",
        "partitions": 4,
        "archived": 4,
        "failed": 0,
        "rows": 19,
    }
    assert len(list(env.rglob("*.csv.gz"))) == 4
    code, out, _ = run(capsys, "archive", "run", "--json")
    assert (code, json.loads(out)["skipped_archived"], json.loads(out)["archived"]) == (0, 4, 0)
    code, out, _ = run(capsys, "archive", "delete", "--json")
    deleted = json.loads(out)
    assert (code, deleted["mode"], deleted["deleted"], deleted["rows_deleted"], deleted["failures"]) == (
        0,
        "delete",
        4,
        19,
        [],
    )


def test_the_summary_is_a_table_without_json(env, capsys):
    code, out, _ = run(capsys, "archive", "run", "--batch-id", "batch-2", "--collection-id", "do_other")
    assert code == 0 and "learnagg archive run" in out and "archived" in out and "partitions" in out


def test_batch_ids_take_commas_and_repeats_and_unknown_batches_are_one_line_errors(env, capsys):
    code, _, err = run(capsys, "archive", "run", "--batch-ids", "batch-2,nope")
    assert (code, err.strip()) == (1, "learnagg: error: unknown batch 'nope'")
    code, out, _ = run(capsys, "archive", "run", "--batch-ids", "batch-2", "--batch-ids", BATCH, "--json")
    assert (code, json.loads(out)["archived"]) == (0, 4)
    code, _, err = run(capsys, "archive", "delete", "--batch-id", BATCH)
    assert code == 1 and err.strip() == (
        "learnagg: error: --batch-id and --collection-id go together (or use --batch-ids)"
    )
    code, out, _ = run(capsys, "archive", "delete", "--batch-id", BATCH, "--collection-id", COURSE, "--json")
    assert (code, json.loads(out)["rows_deleted"]) == (0, 18)


def test_before_takes_a_date(env, capsys):
    code, out, _ = run(capsys, "archive", "run", "--before", "2021-01-02", "--json")
    assert (code, json.loads(out)["rows"]) == (0, 6)
    code, _, err = run(capsys, "archive", "run", "--before", "yesterday")
    assert code == 1 and "--before 'yesterday': use a date like 2024-01-01" in err


@pytest.mark.parametrize(
    "before", ["99999999999999999", "9223372036854775808", "-99999999999999999999", "0001-01-01T00:00:00+14:00"]
)
def test_a_before_out_of_range_is_a_one_line_error(env, capsys, before):
    """Regression: these gave 'internal error: OverflowError'."""
    code, out, err = run(capsys, "archive", "run", "--before", before)
    assert (code, out) == (1, "")
    assert err == f"learnagg: error: --before {before!r}: use a date like 2024-01-01 or 2024-01-01T00:00:00Z\n"
    assert not list(env.rglob("*.csv.gz"))


@pytest.mark.parametrize("batch_ids", ["", ",", " , ", "batch-2,", "batch-2,,batch-1"])
@pytest.mark.parametrize("command", ["run", "delete"])
def test_a_blank_batch_id_is_refused_not_read_as_every_batch(env, capsys, command, batch_ids):
    """Regression: blank ids were dropped, so `--batch-ids ""` archived every batch."""
    code, out, err = run(capsys, "archive", command, "--batch-ids", batch_ids)
    assert (code, out, err) == (1, "", "learnagg: error: --batch-ids must not hold a blank id\n")
    assert not list(env.rglob("*.csv.gz"))


@pytest.mark.parametrize(
    "scope",
    [
        ["--batch-ids", "a\x00b"],
        ["--batch-id", "a\x00b", "--collection-id", "c"],
        ["--batch-id", "b", "--collection-id", "\x00"],
    ],
)
@pytest.mark.parametrize("command", ["run", "delete"])
def test_an_id_with_nul_is_a_one_line_error(env, capsys, command, scope):
    """Regression: on PostgreSQL this was 'database error: … cannot contain NUL'."""
    code, out, err = run(capsys, "archive", command, *scope)
    assert (code, out) == (1, "")
    assert err == "learnagg: error: batch and collection ids must not contain a NUL character\n"


def test_a_damaged_gzip_fails_its_deletion_with_one_line(env, capsys):
    assert run(capsys, "archive", "run", "--batch-ids", "batch-2", "--json")[0] == 0
    [path] = env.rglob("*.csv.gz")
    path.write_bytes(path.read_bytes()[:40])
    code, out, err = run(capsys, "archive", "delete", "--json")
    assert code == 1 and json.loads(out)["failed"] == 1
    [line] = err.strip().splitlines()
    assert line.startswith("learnagg: error: 1 failed (first: ") and line.count("corrupt archive") == 1


def test_a_failed_deletion_exits_non_zero_after_the_summary(env, capsys):
    assert run(capsys, "archive", "run", "--json")[0] == 0
    next(env.rglob("2021-1-*.csv.gz")).unlink()
    code, out, err = run(capsys, "archive", "delete", "--json")
    assert code == 1
    assert json.loads(out)["failed"] == 1
    [line] = err.strip().splitlines()
    assert line.startswith("learnagg: error: 1 failed (first: ") and "no such object" in line


def test_an_object_store_url_without_its_package_names_it(env, capsys, monkeypatch):
    monkeypatch.setenv("LEARNAGG_BLOB_URL", "s3://bucket/archives")
    code, _, err = run(capsys, "archive", "run")
    assert code == 1 and "needs the package s3fs: pip install s3fs" in err and "Traceback" not in err


def test_an_unusable_object_store_is_one_line(env, capsys, monkeypatch, tmp_path):
    (tmp_path / "plain-file").write_text("")
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(tmp_path / "plain-file" / "blobs"))
    code, _, err = run(capsys, "archive", "run")
    assert code == 1 and err.startswith("learnagg: error: cannot use the object store") and err.count("\n") == 1


def test_a_terminal_gets_one_bar_per_run_on_stderr(env, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    code, out, err = run(capsys, "archive", "run", "--json")
    assert code == 0 and json.loads(out)["archived"] == 4
    assert "archive" in err and "19/19 rows" in err and "4/4 files" in err
    code, out, err = run(capsys, "archive", "delete", "--json")
    assert code == 0 and json.loads(out)["deleted"] == 4
    assert "verify+delete" in err and "38/38 rows" in err and "4/4 files" in err


def test_without_a_terminal_stderr_holds_no_bar(env, capsys):
    code, out, err = run(capsys, "archive", "run", "--json")
    assert code == 0 and json.loads(out)["archived"] == 4 and err == ""


def test_bench_archive_reports_rates_and_memory(capsys, monkeypatch):
    monkeypatch.delenv("LEARNAGG_DATABASE_URL", raising=False)
    code, out, _ = run(capsys, "bench", "archive", "--rows", "400", "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["rows"], result["learners"], result["partitions"]) == (400, 50, 50)
    assert result["archive_rows_per_s"] > 0 and result["delete_rows_per_s"] > 0
    assert result["archive_peak_rss_mib"] >= result["baseline_rss_mib"] > 0
    code, _, err = run(capsys, "bench", "archive", "--rows", "1")
    assert code == 1 and "--rows must be between 8 and 20000000" in err
