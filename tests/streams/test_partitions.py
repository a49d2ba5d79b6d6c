"""Partitioned topics and leases on the embedded log: placement, P=8 equals P=1, a lost lease cannot commit."""

from __future__ import annotations

import random
import zlib

import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset, event_log
from learnagg.domain.topics import partition_key
from learnagg.settings import Settings
from tests.streams.test_worker_crash import _comparable
from tests.support import drain, publish

JOB = "assessment-aggregator"


def _events(total: int = 400) -> list[dict]:
    rnd = random.Random(11)
    return [
        {
            "assessmentTs": 1_000 + n,
            "courseId": "do_c",
            "batchId": "b-1",
            "userId": f"u-{rnd.randint(1, 40)}",
            "contentId": f"do_a{rnd.randint(1, 3)}",
            "attemptId": f"at-{rnd.randint(1, 3)}",
            "events": [
                {
                    "ets": rnd.randint(1, 9),
                    "edata": {"score": rnd.choice([0, 1]), "item": {"id": f"q{q}", "maxscore": 1}},
                }
                for q in range(rnd.randint(1, 4))
            ],
        }
        for n in range(total)
    ]


def _store_partitions(app: bootstrap.App, count: int) -> None:
    with app.store.write() as conn:
        assert DatabaseLog(app.store.dialect).store_default_partitions(conn, count) == count


def test_partition_keys_follow_the_learner() -> None:
    assert partition_key(None, '{"userId": "u1", "mid": "m"}') == "u1"
    assert partition_key(None, '{"edata": {"userId": "u2"}}') == "u2"
    assert partition_key(None, '{"edata": {"userIds": ["u3", "u4"]}}') == "u3"
    assert partition_key(None, '{"mid": "m5"}') == "m5"
    assert partition_key(None, "[1]") is None
    assert partition_key("k", '{"userId": "u1"}') == "k"


def test_events_are_placed_by_crc32_of_the_user(app) -> None:
    _store_partitions(app, 8)
    events = _events(50)
    publish(app, "assess", events)
    with app.store.read() as conn:
        rows = conn.execute(select(event_log.c.payload, event_log.c.partition).order_by(event_log.c.seq)).all()
        assert app.log.partitions(conn, app.topics.assess) == 8
    assert [p for _, p in rows] == [zlib.crc32(e["userId"].encode()) % 8 for e in events]


def test_eight_partitions_give_the_rows_of_one(app, tmp_path) -> None:
    _store_partitions(app, 8)
    events = _events()
    publish(app, "assess", events)
    drain(app)
    with app.store.read() as conn:
        positions = conn.execute(select(consumer_offset.c.partition).where(consumer_offset.c.consumer == JOB)).scalars()
        assert sorted(positions) == list(range(8))
        assert app.log.lag(conn, JOB, app.topics.assess) == 0

    url = f"sqlite:///{tmp_path}/one.db"
    store = Store(url)
    schema.upgrade(store)
    reference = bootstrap.build(Settings(database_url=url), store=store)
    try:
        publish(reference, "assess", events)
        drain(reference)
        with reference.store.read() as conn:
            assert reference.log.partitions(conn, reference.topics.assess) == 1
        assert _comparable(app) == _comparable(reference)
    finally:
        reference.close()


def test_a_topic_keeps_the_count_it_was_first_used_with(app) -> None:
    publish(app, "assess", _events(3))
    _store_partitions(app, 8)
    fresh = DatabaseLog(app.store.dialect)  # another process: nothing cached
    with app.store.write() as conn:
        assert fresh.partitions(conn, app.topics.assess) == 1
        assert fresh.partitions(conn, app.topics.progress) == 8


def test_a_worker_whose_lease_was_taken_cannot_commit(app) -> None:
    publish(app, "assess", _events(20))
    first = bootstrap.build_worker(app, [JOB], owner="host-a:1").consumers[0]
    second = bootstrap.build_worker(app, [JOB], owner="host-b:2").consumers[0]
    assert first.ownership.refresh(force=True) == [0]
    # The first worker stalls past its lease; the second takes the partition over.
    second.ownership.now_ms = lambda: first.ownership.now_ms() + 60_000
    second.ownership.pinned = [0]
    assert second.ownership.refresh(force=True) == [0]

    assert first._run_batch(0) == 0  # handled, then refused at commit: rolled back
    assert first.ownership.owned == []
    with app.store.read() as conn:
        assert app.log.offset(conn, JOB, app.topics.assess) == 0
        assert conn.execute(select(consumer_offset.c.owner).where(consumer_offset.c.consumer == JOB)).scalar() == (
            "host-b:2"
        )
    assert first.counters["batch-success"] == 0 and not first.counters


@pytest.mark.parametrize("pinned", [[1], [0, 2]])
def test_pinned_worker_drains_only_its_partitions(app, pinned) -> None:
    _store_partitions(app, 4)
    publish(app, "assess", _events(60))
    worker = bootstrap.build_worker(app, [JOB], partitions=pinned)
    worker.start(until_idle=True)
    with app.store.read() as conn:
        lags = app.log.lags(conn, JOB, app.topics.assess)
    assert all(lags[p] == 0 for p in pinned)
    assert any(lags[p] > 0 for p in range(4) if p not in pinned)
