"""A worker killed with SIGKILL mid-run and restarted ends with the same rows as an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset
from learnagg.settings import Settings
from tests.support import activity_rows, attempts, drain, publish, topic_events

TOTAL = 3000


def _events() -> list[dict]:
    rnd = random.Random(7)
    out = []
    for n in range(TOTAL):
        answers = [
            {
                "ets": rnd.randint(1, 9),
                "edata": {"score": rnd.choice([0, 0.5, 1]), "item": {"id": f"q{rnd.randint(1, 6)}", "maxscore": 1}},
            }
            for _ in range(rnd.randint(1, 6))
        ]
        out.append(
            {
                "assessmentTs": 1_000 + n,
                "courseId": "do_c",
                "batchId": "b-1",
                "userId": f"u-{rnd.randint(1, 200)}",
                "contentId": f"do_a{rnd.randint(1, 3)}",
                "attemptId": f"at-{rnd.randint(1, 4)}",
                "events": answers,
            }
        )
    return out


def _comparable(app: bootstrap.App) -> tuple:
    """Rows without the columns that hold "now" (the two runs have different clocks)."""
    rows = [{k: v for k, v in r.items() if k not in ("created_on", "updated_on")} for r in attempts(app)]
    aggs = [{k: (sorted(v) if k == "agg_last_updated" else v) for k, v in r.items()} for r in activity_rows(app)]
    certificates = sorted(
        (e["object"]["id"], e["edata"]["userIds"][0], e["edata"]["attemptId"]) for e in topic_events(app, "certificate")
    )
    return rows, aggs, certificates


def _offset(store: Store) -> int:
    """The assessment aggregator's offset (other jobs consume other topics)."""
    stmt = select(consumer_offset.c.seq).where(consumer_offset.c.consumer == "assessment-aggregator")
    with store.read() as conn:
        return conn.execute(stmt).scalar() or 0


def _worker(url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url, "LEARNAGG_WORKER__BATCH_SIZE": "25"}
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "worker", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_gives_the_same_rows(app, tmp_path):
    events = _events()
    publish(app, "assess", events)

    killed = _worker(app.settings.database_url)
    deadline = time.monotonic() + 120
    while _offset(app.store) < TOTAL // 4:
        assert killed.poll() is None and time.monotonic() < deadline, "worker stopped or made no progress"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert _offset(app.store) < TOTAL, "the kill came too late to test anything"

    finished = _worker(app.settings.database_url, "--until-idle")
    _, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err.decode()

    reference_url = f"sqlite:///{tmp_path}/reference.db"
    reference_store = Store(reference_url)
    schema.upgrade(reference_store)
    reference = bootstrap.build(Settings(database_url=reference_url), store=reference_store)
    publish(reference, "assess", events)
    drain(reference)
    try:
        assert _comparable(app) == _comparable(reference)
    finally:
        reference.close()
