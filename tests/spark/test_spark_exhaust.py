"""The exhaust runner and `learnagg report` on the spark engine: the same zips, request rows and CSV files as on the
python engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.tables import job_request
from learnagg.batch.archival import ArchivalScope, run_archive
from learnagg.batch.exhaust_runner import run_exhaust
from learnagg.entrypoints.cli import main
from tests.batch.test_archival import attempt, seed
from tests.batch.test_exhaust_runner import BATCH, BATCH2, COURSE, row, submit, world
from tests.conftest import SPARK

pytestmark = pytest.mark.usefixtures("spark")  # the engine finds and reuses the shared session


def zips(blobs: ObjectStore) -> dict[str, bytes]:
    out = {}
    for key in blobs.list_keys():
        if key.endswith(".zip"):
            with blobs.open_read(key) as f:
                out[key] = f.read()
    return out


def test_the_runner_on_spark_writes_the_same_zips_and_request_rows(app, tmp_path: Path):
    world(app)
    python_blobs = ObjectStore(str(tmp_path / "py"))
    run_archive(app, python_blobs, ArchivalScope(batch_ids=(BATCH,)))
    seed(app, [attempt("abe", "c1", "late", 1_600_000_000_000, 4.5)])  # live beside the archives
    shutil.copytree(tmp_path / "py", tmp_path / "spark")
    spark_blobs = ObjectStore(str(tmp_path / "spark"))
    ids = [
        submit(app, {"batchFilter": [BATCH2, BATCH]}),
        submit(app, {"batchFilter": [BATCH]}, dataset="response-exhaust"),
        submit(app, {"batchId": "nope"}, tag="tag-2"),
    ]
    submitted = [row(app, i) for i in ids]
    first = run_exhaust(app, python_blobs, engine="python")
    rows = [row(app, i) for i in ids]
    with app.store.write() as conn:  # submitted again, as they were
        for values in submitted:
            conn.execute(update(job_request).where(job_request.c.request_id == values["request_id"]).values(values))

    again = run_exhaust(app, spark_blobs, engine="spark")

    assert (again.requests, again.succeeded, again.failed, again.batches) == (3, 2, 1, 3)
    assert (again.batches, again.bytes) == (first.batches, first.bytes)
    skip = {"execution_time", "iteration"}
    assert [{k: v for k, v in row(app, i).items() if k not in skip} for i in ids] == [
        {k: v for k, v in r.items() if k not in skip} for r in rows
    ]
    produced = zips(spark_blobs)
    assert len(produced) == 3 and produced == zips(python_blobs)


def test_report_commands_take_the_engine_option(app, database_url, tmp_path, monkeypatch, capsys):
    world(app)
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    monkeypatch.setenv("LEARNAGG_BLOB_URL", str(tmp_path / "blobs"))
    monkeypatch.setenv("LEARNAGG_SPARK__MASTER", SPARK["master"])
    for key in ("progress", "response"):
        texts = []
        for engine in ("python", "spark"):
            out = tmp_path / engine
            assert main(["report", key, "--batch-id", BATCH, "--out", str(out), "--engine", engine]) == 0
            [path] = out.glob(f"{BATCH}_{key}_*.csv")
            texts.append(path.read_bytes())
            shutil.rmtree(out)
        assert texts[1] == texts[0] and texts[0].count(b"\n") > 3
    capsys.readouterr()
    assert main(["report", "progress", "--batch-id", "nope", "--engine", "spark"]) != 0
    assert "does not exist" in capsys.readouterr().err
    assert COURSE
