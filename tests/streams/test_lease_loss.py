"""A worker paused (SIGSTOP) in the middle of a batch past its lease never commits that batch: on PostgreSQL another
worker takes its partition over and drains it meanwhile; on SQLite the resumed worker's commit is refused and the
batch is done again. Either way the rows equal a single uninterrupted run (docs/scale-out.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset
from learnagg.settings import Settings
from tests.streams.test_partitions import _events
from tests.streams.test_worker_crash import _comparable
from tests.support import drain, publish

JOB = "assessment-aggregator"
LEASE = 2  # seconds


class Process:
    """One `learnagg worker --job assessment-aggregator`, its output and log in files."""

    def __init__(self, url: str, folder: Path, name: str, batch_size: int, lease: int = LEASE) -> None:
        env = {
            **os.environ,
            "LEARNAGG_DATABASE_URL": url,
            "LEARNAGG_WORKER__LEASE_SECONDS": str(lease),
            "LEARNAGG_WORKER__POLL_INTERVAL": "0.05",
            "LEARNAGG_WORKER__BATCH_SIZE": str(batch_size),
        }
        self.out, self.err = folder / f"{name}.out", folder / f"{name}.log"
        cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "worker", "--job", JOB]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.popen = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)

    def signal(self, signum: int) -> None:
        os.kill(self.popen.pid, signum)

    def stop(self) -> dict:
        """SIGTERM, then the summary the worker prints (events it committed, per job counters)."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        assert self.popen.wait(timeout=60) == 0, self.log()
        return orjson.loads(self.out.read_bytes())

    def log(self) -> str:
        return self.err.read_text()


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _position(app: bootstrap.App) -> int:
    with app.store.read() as conn:
        return app.log.offset(conn, JOB, app.topics.assess)  # type: ignore[attr-defined]


def _last_seq(app: bootstrap.App) -> int:
    with app.store.read() as conn:
        return app.log.read(conn, app.topics.assess)[-1].seq  # type: ignore[attr-defined]


def _committed(summary: dict) -> dict[str, int]:
    """The job's counters moved by committed batches (a failed attempt only counts a retry)."""
    return {k: v for k, v in summary["jobs"][JOB].items() if v and k != "retry"}


def _reference(tmp_path: Path, events: list[dict]) -> tuple[tuple, dict[str, int]]:
    """The rows and committed counters of one uninterrupted run."""
    url = f"sqlite:///{tmp_path}/reference.db"
    store = Store(url)
    schema.upgrade(store)
    reference = bootstrap.build(Settings(database_url=url), store=store)
    try:
        publish(reference, "assess", events)
        [consumer] = drain(reference, [JOB]).consumers
        counters = {k: v for k, v in consumer.reference_counters().items() if v and k != "retry"}
        return _comparable(reference), counters
    finally:
        reference.close()


@pytest.mark.slow
def test_a_paused_worker_loses_its_partition_to_another_and_never_commits(app, tmp_path) -> None:
    if app.store.backend == "sqlite":
        pytest.skip("two workers at once: PostgreSQL (SQLite has one writer; see the next test)")
    events = _events(300)
    publish(app, "assess", events)
    learners = {("do_c", "b-1", e["userId"]) for e in events}
    with app.store.engine.connect() as holder:
        with holder.begin():  # every learner locked: the first worker's batch waits inside its transaction
            app.store.dialect.lock_learners(holder, learners)
            first = Process(app.settings.database_url, tmp_path, "first", batch_size=50)
            waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            _wait(lambda: holder.execute(waiting).scalar() > 0, 60, "the first worker's batch to wait")
            first.signal(signal.SIGSTOP)
        # Released: the paused worker's statement has completed, its transaction stays open.
        time.sleep(LEASE + 0.5)
        second = Process(app.settings.database_url, tmp_path, "second", batch_size=50)
        try:
            _wait(lambda: _position(app) == _last_seq(app), 60, "the second worker to drain the partition")
        finally:
            first.signal(signal.SIGCONT)
        time.sleep(LEASE)  # the resumed worker runs on: it must not commit what it had
    second_summary, first_summary = second.stop(), first.stop()
    # The server ended the paused worker's transaction; resumed, it found its connection closed.
    assert "server closed the connection" in first.log()
    assert _committed(first_summary) == {}, first.log()  # not one event counted: no batch of it committed
    assert _committed(second_summary)["batch-success-count"] > 0
    assert _comparable(app) == _reference(tmp_path, events)[0]


@pytest.mark.slow
def test_a_worker_resumed_past_its_lease_rolls_its_batch_back(app, tmp_path) -> None:
    if app.store.backend != "sqlite":
        pytest.skip("SQLite's single writer: the paused worker blocks every other, so nobody takes over")
    events = _events(3000)
    publish(app, "assess", events)
    # A lease long enough for a batch to end within it (a batch longer than its lease could never commit).
    lease = 6
    worker = Process(app.settings.database_url, tmp_path, "worker", batch_size=1500, lease=lease)
    probe = Store(app.settings.database_url)

    def write_locked() -> bool:
        try:
            with probe.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.exec_driver_sql("ROLLBACK")
            return False
        except OperationalError:
            return True

    def mid_batch() -> bool:  # the worker holds the write lock for longer than a lease renewal takes
        assert _position(app) == 0, "the first batch committed before it could be paused"
        return write_locked() and time.sleep(0.1) is None and write_locked()

    try:
        _wait(lambda: "holds partition" in worker.log(), 60, "the worker to hold the partition")
        _wait(mid_batch, 60, "the worker's batch")
        worker.signal(signal.SIGSTOP)
        time.sleep(lease + 1)
        worker.signal(signal.SIGCONT)
        _wait(lambda: _position(app) == _last_seq(app), 120, "the worker to drain the partition")
    finally:
        probe.dispose()
        summary = worker.stop()
    # The pause lands in a batch (its commit is then refused: "batch rolled back") or in a lease renewal, which
    # also holds SQLite's write lock; either way nothing is applied or counted twice.
    rows, counters = _reference(tmp_path, events)
    assert _committed(summary) == counters  # a refused batch was done again, and counted once
    assert _comparable(app) == rows


def test_a_batch_of_one_job_renews_the_due_leases_of_the_workers_other_jobs(app) -> None:
    publish(app, "assess", _events(20))
    worker = bootstrap.build_worker(app, [JOB, "certificate-pre-processor"], owner="host-a:1")
    assess, certificates = worker.consumers
    for consumer in worker.consumers:
        assert consumer.ownership.refresh(force=True) == [0]
    before = _lease_until(app, "certificate-pre-processor")
    time.sleep(0.01)
    certificates.ownership._due = 0.0  # its renewal is due while the other job works through a long round
    assert assess._run_batch(0) == 20
    assert _lease_until(app, "certificate-pre-processor") > before


def _lease_until(app: bootstrap.App, job: str) -> int:
    with app.store.read() as conn:
        stmt = select(consumer_offset.c.lease_until).where(consumer_offset.c.consumer == job)
        return conn.execute(stmt).scalar_one()
