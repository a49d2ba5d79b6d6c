"""The spark engine's archive run: the same files (names, bytes), metadata rows and leases as the python engine, and
`archive delete` verifies and deletes what it wrote."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.tables import archival_metadata, batch_lease
from learnagg.batch.archival import ArchivalScope, run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.spark.archival import run_archive_spark
from learnagg.entrypoints.cli import main
from tests.batch.test_archival import at, attempt, metadata, sample, seed, snapshot
from tests.conftest import SPARK
from tests.support import attempts

pytestmark = pytest.mark.usefixtures("spark")  # the engine finds and reuses the shared session


def tricky() -> list[dict[str, Any]]:
    """Rows whose fields need D5 quoting, non-ASCII text, nulls and many users in one week."""
    ts = at(2021, 3, 3, 12)
    rows = [attempt(f"u{i:02d}", "c1", f"a{i}", ts + i, i / 7) for i in range(11)]
    rows.append(attempt('q"uote,d', "c,1", "a\nline", ts + 50, 2.0, title='say "hi", then\r\nbye'))
    rows.append(attempt("日本", "c1", "a", ts + 51, 1e-7, title="ünïcödé ✓"))
    odd = attempt("nulls", "c1", "a", ts + 52, 3.0)
    odd.update(grand_total=None, last_attempted_on=None, total_max_score=None, question=[])
    rows.append(odd)
    return rows


def files(blobs: ObjectStore) -> dict[str, bytes]:
    """Every archive by key, uncompressed."""
    out = {}
    for key in blobs.list_keys():
        with blobs.open_read(key) as f:
            out[key] = gzip.decompress(f.read())
    return out


def forget_archives(app) -> None:
    with app.store.write() as conn:
        conn.execute(delete(archival_metadata))
        conn.execute(delete(batch_lease))


def test_both_engines_write_the_same_files_and_metadata_rows(app, tmp_path: Path):
    seed(app, sample() + tricky())
    python_blobs, spark_blobs = ObjectStore(str(tmp_path / "py")), ObjectStore(str(tmp_path / "spark"))
    by_python = run_archive(app, python_blobs)
    expected_files, expected_rows = files(python_blobs), metadata(app)
    forget_archives(app)

    by_spark = run_archive_spark(app, spark_blobs)

    assert (by_spark.partitions, by_spark.archived, by_spark.failed, by_spark.rows, by_spark.bytes) == (
        by_python.partitions,
        by_python.archived,
        0,
        by_python.rows,
        by_python.bytes,
    )
    assert by_spark.archived == 5 and by_spark.rows == 33
    assert files(spark_blobs) == expected_files
    assert metadata(app) == expected_rows
    again = run_archive_spark(app, spark_blobs)
    assert (again.archived, again.skipped_archived) == (0, 5)
    with app.store.read() as conn:
        assert conn.execute(batch_lease.select()).first() is None  # every lease released


def test_archive_delete_verifies_and_deletes_what_the_spark_engine_wrote(app, tmp_path: Path):
    seed(app, sample())
    before = snapshot(app)
    blobs = ObjectStore(str(tmp_path / "blobs"))
    assert run_archive_spark(app, blobs).archived == 4
    summary = run_delete(app, blobs)
    assert (summary.files, summary.deleted, summary.failed, summary.rows_deleted) == (4, 4, 0, 19)
    assert attempts(app) == []
    assert snapshot(app) == before


def test_the_cli_runs_the_spark_engine_by_option_or_setting(app, database_url, tmp_path, monkeypatch, capsys):
    seed(app, sample())
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(tmp_path / "blobs"))
    monkeypatch.setenv("LEARNAGG_SPARK__MASTER", SPARK["master"])
    assert main(["archive", "run", "--engine", "spark", "--batch-ids", "batch-2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["archived"] == 1
    monkeypatch.setenv("LEARNAGG_BATCH__ENGINE", "spark")
    assert main(["archive", "run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["archived"] == 3
    assert len(ObjectStore(str(tmp_path / "blobs")).list_keys()) == 4


def test_the_spark_engine_refuses_sqlite_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", f"sqlite:///{tmp_path}/learnagg.db")
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(tmp_path / "blobs"))
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["archive", "run", "--engine", "spark"]) != 0
    err = capsys.readouterr().err.strip()
    assert "needs PostgreSQL" in err and "--engine python" in err and "\n" not in err and "Traceback" not in err


def test_a_write_failure_is_recorded_as_the_python_engine_records_it(app, tmp_path: Path):
    seed(app, sample())
    blobs = ObjectStore(str(tmp_path / "blobs"))
    (tmp_path / "blobs" / "archived-data").mkdir(parents=True)
    (tmp_path / "blobs" / "archived-data" / "batch-2_do_other").write_text("a file where the folder goes")
    scope = ArchivalScope(batch_ids=("batch-2",))
    by_python = run_archive(app, blobs, scope)
    expected = metadata(app)
    forget_archives(app)
    by_spark = run_archive_spark(app, blobs, scope)
    assert (by_spark.failed, by_spark.archived, by_spark.failures) == (1, 0, by_python.failures)
    assert metadata(app) == expected and expected[0]["archival_status"] == "FAILED"
    assert expected[0]["err_message"].startswith(("FileExistsError", "NotADirectoryError"))
