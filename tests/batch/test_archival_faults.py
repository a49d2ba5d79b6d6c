"""Fault injection: `learnagg archive run|delete` killed (SIGKILL) at random moments loses nothing (SPEC §6.2, §7 #3).

Each test starts the real command in a subprocess, waits until it is working, kills it after a random delay, and
checks the invariants; then a last uninterrupted run must complete the work.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from learnagg import bootstrap
from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator
from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar
from learnagg.settings import Settings
from tests.batch.test_archival import at, attempt, seed, snapshot
from tests.conftest import T
from tests.support import attempts

KILLS = 4
BATCHES = [("do_fault_a", "fault-1"), ("do_fault_a", "fault-2"), ("do_fault_b", "fault-3")]


def rows() -> list[dict[str, Any]]:
    """24 partitions of 320 rows: 40 learners x 4 contents x 2 attempts per batch and week."""
    out = []
    for course, batch in BATCHES:
        for week in range(8):
            start = at(2023, 1, 2) + week * ac.WEEK_MS
            for learner in range(40):
                for content in range(4):
                    for n in range(2):
                        ts = start + learner * 60_000 + content * 1000 + n
                        score = float((learner + content + n + week) % 6)
                        out.append(
                            attempt(
                                f"u{learner:02d}", f"c{content}", f"w{week}n{n}", ts, score, course=course, batch=batch
                            )
                        )
    return out


def command(mode: str, url: str, blob_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNAGG_")}
    env.update(
        LEARNAGG_DATABASE_URL=url,
        LEARNAGG_BLOB_URL=str(blob_dir),
        LEARNAGG_ARCHIVAL__CHUNK_ROWS="100",  # several transactions per file when deleting
        LEARNAGG_ARCHIVAL__LEASE_SECONDS="1",  # a killed run's claims end quickly
    )
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "archive", mode, "--json"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_when(proc: subprocess.Popen[bytes], started: Any, rng: random.Random, *, limit: float = 60) -> bool:
    """Wait until ``started()`` says the command is working, then SIGKILL it after a random delay.

    Returns False when the command finished first.
    """
    deadline = time.monotonic() + limit
    while not started():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the command never started working"
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.2))
    if proc.poll() is not None:
        return False
    proc.kill()
    proc.wait()
    return True


def finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


def meta(app: bootstrap.App) -> list[Any]:
    with app.store.read() as conn:
        return list(conn.execute(select(archival_metadata)))


def file_rows(blobs: ObjectStore, key: str) -> list[ar.ArchivedRow]:
    with blobs.open_read(key) as f:
        return list(ar.ArchiveReader(f))


def live_count(app: bootstrap.App) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one())


@pytest.fixture
def world(database_url: str, tmp_path: Path):
    app = bootstrap.build(Settings(database_url=database_url, blob_url=str(tmp_path / "blobs")))
    app.clock = lambda: T  # type: ignore[assignment]
    seed(app, rows())
    yield app, ObjectStore(str(tmp_path / "blobs")), database_url, tmp_path / "blobs"
    app.close()


def check_archive_invariants(app: bootstrap.App, blobs: ObjectStore, original: set[tuple[str, ...]]) -> None:
    assert {key(r) for r in attempts(app)} == original  # archiving never deletes
    recorded = meta(app)
    pointed = {m.blob_url[0] for m in recorded if m.blob_url}
    for m in recorded:
        if m.archival_status == "SUCCESS":
            with blobs.open_read(m.blob_url[0]) as f:
                assert ar.read_digest(f) == ac.ArchiveDigest(m.row_count, m.checksum)
    for k in blobs.list_keys():  # no half-written file is ever visible, and none is untracked
        with blobs.open_read(k) as f:
            ar.read_digest(f)
        assert k in pointed


def key(r: Any) -> tuple[str, ...]:
    if isinstance(r, dict):
        return (r["course_id"], r["batch_id"], r["user_id"], r["content_id"], r["attempt_id"])
    return (r.course_id, r.batch_id, r.user_id, r.content_id, r.attempt_id)


def test_archive_killed_during_upload_loses_nothing_and_a_rerun_completes(world):
    app, blobs, url, blob_dir = world
    original = {key(r) for r in attempts(app)}
    rng = random.Random(5)
    kills = 0
    for _ in range(KILLS):
        present = set(blob_dir.rglob("*")) if blob_dir.exists() else set()
        proc = command("run", url, blob_dir)
        if kill_when(proc, lambda present=present: blob_dir.exists() and set(blob_dir.rglob("*")) != present, rng):
            kills += 1
            check_archive_invariants(app, blobs, original)
        else:
            finish(proc)
            break
    assert kills >= 1
    finish(command("run", url, blob_dir))
    check_archive_invariants(app, blobs, original)
    recorded = meta(app)
    assert len(recorded) == 24 and all(m.archival_status == "SUCCESS" for m in recorded)
    assert sorted(blobs.list_keys()) == sorted(m.blob_url[0] for m in recorded)
    archived = [key(r) for m in recorded for r in file_rows(blobs, m.blob_url[0])]
    assert len(archived) == len(original) and set(archived) == original


def test_delete_killed_mid_way_keeps_every_score_and_a_rerun_completes(world):
    app, blobs, url, blob_dir = world
    finish(command("run", url, blob_dir))
    before = snapshot(app)
    files = {m.request_id: file_rows(blobs, m.blob_url[0]) for m in meta(app)}
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        count = live_count(app)
        proc = command("delete", url, blob_dir)
        if kill_when(proc, lambda count=count: live_count(app) < count, rng):
            kills += 1
        else:
            finish(proc)
            break
        # Scores, attempt counts and agg_details never change, whatever was deleted so far.
        assert snapshot(app) == before
        live = {key(r) for r in attempts(app)}
        done = {m.request_id for m in meta(app) if m.deletion_status == "SUCCESS"}
        for request_id, archived in files.items():
            by_user: dict[str, set[bool]] = {}
            for r in archived:
                by_user.setdefault(r.user_id, set()).add(key(r) in live)
            # A learner's rows of one file go together: all live or all deleted.
            assert all(len(states) == 1 for states in by_user.values())
            if request_id in done:
                assert not any(key(r) in live for r in archived)
    assert kills >= 1
    finish(command("delete", url, blob_dir))
    assert live_count(app) == 0
    assert all(m.deletion_status == "SUCCESS" for m in meta(app))
    assert snapshot(app) == before
