"""`learnagg archive run --engine spark` on a real standalone cluster (a master and a worker process started here):
the same files and metadata rows as the python engine, apart from the upload time in the names."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from learnagg.adapters.objectstore import ObjectStore
from learnagg.batch.archival import run_archive
from tests.batch.test_archival import metadata, sample, seed
from tests.spark.standalone import StandaloneCluster
from tests.spark.test_spark_archival import forget_archives, tricky

UPLOADED = re.compile(r"-\d+\.csv\.gz$")


def archives(blobs: ObjectStore) -> dict[str, bytes]:
    """Every archive, uncompressed, by its key without the upload time."""
    out = {}
    for key in blobs.list_keys():
        with blobs.open_read(key) as f:
            out[UPLOADED.sub("", key)] = gzip.decompress(f.read())
    return out


def rows(app) -> list[dict]:
    skip = {"archival_date", "blob_url"}
    return [{k: v for k, v in m.items() if k not in skip} for m in metadata(app)]


def test_archive_run_on_a_standalone_cluster_writes_the_python_engines_files(app, database_url, tmp_path: Path):
    seed(app, sample() + tricky())
    run_archive(app, ObjectStore(str(tmp_path / "py")))
    expected_files, expected_rows = archives(ObjectStore(str(tmp_path / "py"))), rows(app)
    forget_archives(app)
    cluster = StandaloneCluster().start()
    try:
        conf = {"spark.ui.enabled": "false", "spark.executor.memory": "512m", "spark.driver.host": "127.0.0.1"}
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNAGG_")} | {
            "LEARNAGG_DATABASE_URL": database_url,
            "LEARNAGG_BLOB_URL": str(tmp_path / "spark"),
            "LEARNAGG_SPARK__MASTER": cluster.master,
            "LEARNAGG_SPARK__CONF": json.dumps(conf),
            "PYSPARK_PYTHON": sys.executable,
        }
        done = subprocess.run(
            [sys.executable, "-m", "learnagg", "archive", "run", "--engine", "spark", "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:] + cluster.log("worker")[-3000:]
        executors = list((cluster.folder / "work").glob("app-*/*/stderr"))
    finally:
        cluster.stop()
    summary = json.loads(done.stdout)
    assert (summary["archived"], summary["failed"], summary["rows"]) == (5, 0, 33)
    assert executors  # the tasks ran in an executor of the cluster's worker, not in the driver
    assert archives(ObjectStore(str(tmp_path / "spark"))) == expected_files
    assert rows(app) == expected_rows
