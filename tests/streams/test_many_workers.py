"""Two `learnagg worker` processes on PostgreSQL equal one; a SIGKILLed worker's partitions move within a lease."""

from __future__ import annotations

import os
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
from learnagg.domain.messages import issue_certificate_request, progress_event
from learnagg.settings import Settings
from tests.streams.test_partitions import _events, _store_partitions
from tests.support import activity_rows, attempts, course, load, publish, topic_events

LEASE = 2


def _mixed(app: bootstrap.App) -> None:
    load(app, course("do_c", ["do_a1", "do_a2", "do_a3"]))
    publish(app, "assess", _events(600))
    progress = [
        progress_event(user_id=f"u-{n % 40}", batch_id="b-1", course_id="do_c", contents=[("do_a1", 2)], now=1)
        for n in range(200)
    ]
    publish(app, "progress", progress)
    requests = [
        issue_certificate_request(course_id="do_c", batch_id="b-1", user_id=f"u-{n}", now=1) for n in range(100)
    ]
    publish(app, "certificate", requests)


def _state(app: bootstrap.App) -> tuple:
    certificates = sorted(
        (e["object"]["id"], e["edata"]["userIds"][0], e["edata"].get("attemptId", ""))
        for e in topic_events(app, "certificate")
    )
    failed = sorted(
        len(topic_events(app, t))
        for t in ("telemetry.assess.failed", "activity.agg.failed", "issue.certificate.failed")
    )
    rows = [{k: v for k, v in r.items() if k not in ("created_on", "updated_on")} for r in attempts(app)]
    aggs = [{k: (sorted(v) if k == "agg_last_updated" else v) for k, v in r.items()} for r in activity_rows(app)]
    return rows, aggs, certificates, failed


def _worker(url: str, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "LEARNAGG_DATABASE_URL": url,
        "LEARNAGG_WORKER__BATCH_SIZE": "10",
        "LEARNAGG_WORKER__LEASE_SECONDS": str(LEASE),
        "LEARNAGG_WORKER__POLL_INTERVAL": "0.05",
    }
    cmd = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()", "worker", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _owners(app: bootstrap.App) -> dict[int, str | None]:
    c = consumer_offset.c
    with app.store.read() as conn:
        rows = conn.execute(select(c.partition, c.owner).where(c.consumer == "assessment-aggregator")).all()
    return dict(rows)


def _reference(tmp_path, clock) -> bootstrap.App:
    url = f"sqlite:///{tmp_path}/reference.db"
    store = Store(url)
    schema.upgrade(store)
    reference = bootstrap.build(Settings(database_url=url), store=store, clock=clock)
    _mixed(reference)
    bootstrap.build_worker(reference, max_retries=0).start(until_idle=True)
    return reference


@pytest.mark.slow
def test_two_workers_then_one_killed_equal_a_single_worker(app, tmp_path, clock) -> None:
    if app.store.backend == "sqlite":
        pytest.skip("several worker processes: PostgreSQL")
    _store_partitions(app, 4)
    _mixed(app)
    url = app.settings.database_url
    first, second = _worker(url), _worker(url)
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers hold partitions
            owners = _owners(app)
            if len(owners) == 4 and len({o for o in owners.values() if o}) == 2:
                break
            assert time.monotonic() < deadline, owners
            time.sleep(0.05)
        victim = f"{os.uname().nodename}:{first.pid}"
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        while any(o == victim for o in _owners(app).values()):
            assert time.monotonic() - killed_at < LEASE * 3, "the killed worker's partitions did not move"
            time.sleep(0.05)
        moved_after = time.monotonic() - killed_at
        assert moved_after < LEASE * 2  # within one lease period (plus a renewal round)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
    finished = _worker(url, "--until-idle")
    _, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err.decode()

    reference = _reference(tmp_path, clock)
    try:
        state = _state(app)
        assert len(state[2]) >= 700 and len(state[0]) > 100  # the certificate requests published and emitted
        assert state == _state(reference)
    finally:
        reference.close()
