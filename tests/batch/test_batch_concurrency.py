"""Several `learnagg archive run|delete` processes at once: partition leases split the work (docs/batch.md).

Real processes on the test database (SQLite and PostgreSQL), started together: every partition is archived once
(one file, one metadata row, no orphan upload), every archive deleted once, and a process killed while it holds
a lease leaves its partitions to the others once the (short) lease has ended.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.batch_leases import acquire, held, release
from learnagg.adapters.store.tables import batch_lease
from learnagg.batch.archival import run_archive
from learnagg.domain import archive_csv as ac
from learnagg.settings import Settings
from tests.batch.test_archival import at, attempt, seed, snapshot
from tests.batch.test_archival_faults import command, file_rows, key, live_count, meta
from tests.conftest import T
from tests.support import attempts

WEEKS = 26
BATCHES = [("do_conc_a", "conc-1"), ("do_conc_b", "conc-2")]  # 52 partitions


def rows() -> list[dict[str, Any]]:
    """52 partitions of 12 rows: 3 learners x 2 contents x 2 attempts per batch and week."""
    out = []
    for course, batch in BATCHES:
        for week in range(WEEKS):
            start = at(2023, 1, 2) + week * ac.WEEK_MS
            for learner in range(3):
                for content in range(2):
                    for n in range(2):
                        ts = start + learner * 60_000 + content * 1000 + n
                        out.append(
                            attempt(f"u{learner}", f"c{content}", f"w{week}n{n}", ts, float((learner + n) % 5),
                                    course=course, batch=batch)
                        )  # fmt: skip
    return out


@pytest.fixture
def world(database_url: str, tmp_path: Path):
    app = bootstrap.build(Settings(database_url=database_url, blob_url=str(tmp_path / "blobs")))
    app.clock = lambda: T  # type: ignore[assignment]
    seed(app, rows())
    yield app, ObjectStore(str(tmp_path / "blobs")), database_url, tmp_path / "blobs"
    app.close()


def summaries(procs: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        out.append(json.loads(stdout))
    return out


def check_archived_once(
    app: bootstrap.App, blobs: ObjectStore, original: set[tuple[str, ...]], killed: int | None = None
) -> None:
    recorded = meta(app)
    assert len(recorded) == 2 * WEEKS and all(m.archival_status == "SUCCESS" for m in recorded)
    assert all(m.iteration == 0 for m in recorded)  # no partition failed, none was retried
    # One file per partition and no orphan upload: the files are exactly those the metadata names.
    assert sorted(blobs.list_keys()) == sorted(m.blob_url[0] for m in recorded)
    archived = [key(r) for m in recorded for r in file_rows(blobs, m.blob_url[0])]
    assert len(archived) == len(original) and set(archived) == original
    with app.store.read() as conn:
        owners = conn.execute(select(batch_lease.c.owner)).scalars().all()
    # Every lease released, but one a killed run held on a partition another run had already finished: it expires.
    assert all(killed is not None and f":{killed}:" in o for o in owners)


def test_three_archive_runs_at_once_archive_every_partition_once(world):
    app, blobs, url, blob_dir = world
    original = {key(r) for r in attempts(app)}
    done = summaries([command("run", url, blob_dir) for _ in range(3)])
    assert sum(s["archived"] for s in done) == 2 * WEEKS  # each partition archived by exactly one run
    assert all(s["failed"] == 0 and s["held"] == 0 for s in done)
    check_archived_once(app, blobs, original)


def test_three_delete_runs_at_once_delete_every_row_once_and_keep_scores(world):
    app, blobs, url, blob_dir = world
    run_archive(app, blobs)
    before = snapshot(app)
    total = live_count(app)
    done = summaries([command("delete", url, blob_dir) for _ in range(3)])
    assert sum(s["deleted"] for s in done) == 2 * WEEKS
    assert sum(s["rows_deleted"] for s in done) == total  # every row deleted by exactly one run
    assert live_count(app) == 0
    assert all(m.deletion_status == "SUCCESS" for m in meta(app))
    assert snapshot(app) == before  # best scores, attempt counts and agg_details unchanged


def holds_lease(app: bootstrap.App, pid: int) -> bool:
    with app.store.read() as conn:
        owners = conn.execute(select(batch_lease.c.owner)).scalars().all()
    return any(f":{pid}:" in o for o in owners)


def test_a_run_killed_holding_leases_leaves_its_partitions_to_the_others(world):
    app, blobs, url, blob_dir = world
    original = {key(r) for r in attempts(app)}
    # The victim starts alone, so it claims a partition whatever the others' start-up time; it is killed holding it.
    victim = command("run", url, blob_dir)
    deadline = time.monotonic() + 60
    while not holds_lease(app, victim.pid):
        assert victim.poll() is None and time.monotonic() < deadline, "the run never claimed a partition"
        time.sleep(0.002)
    victim.kill()
    victim.wait()
    others = [command("run", url, blob_dir) for _ in range(2)]
    done = summaries(others)  # they wait for the killed run's lease to end, then archive its partition
    assert all(s["failed"] == 0 and s["held"] == 0 for s in done)
    check_archived_once(app, blobs, original, killed=victim.pid)


def test_a_lease_is_held_by_one_owner_until_released_or_expired(app):
    store = app.store
    assert acquire(store, "unit", "a", 1000, 500)
    assert not acquire(store, "unit", "b", 1499, 500)  # held by a
    assert acquire(store, "unit", "a", 1400, 500)  # a renews its own
    assert acquire(store, "unit", "b", 1901, 500)  # expired: b takes it over
    release(store, "unit", "a")  # a no longer holds it: nothing released
    assert not acquire(store, "unit", "c", 1902, 500)
    release(store, "unit", "b")
    with held(store, lambda: 5000, "unit", "c", 1.0) as lease:
        assert lease is not None
        with held(store, lambda: 5000, "unit", "d", 1.0) as other:
            assert other is None
    assert acquire(store, "unit", "d", 5000, 500)  # released when the body ended
