"""The store and the event log: schema, atomic map patches (SPEC D2), ordering and offsets (SPEC §2.5)."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import OperationalError

from learnagg.adapters.store import schema
from learnagg.adapters.store.scores import MetricsPatch, patch_activity_rows
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset, user_activity_agg
from learnagg.streams.consumer import JobConsumer
from learnagg.streams.handler import BatchResult
from tests.support import activity_rows, publish, topic_events


def test_init_twice_is_harmless(app):
    schema.upgrade(app.store)
    schema.upgrade(app.store)
    assert schema.current_revision(app.store) == schema.head_revision()


def test_d2_concurrent_patches_of_different_keys_both_survive(app):
    key = ("do_c", "u-1", "cb:b-1")
    per_thread = 30

    def writer(prefix: str) -> None:
        for i in range(per_thread):
            with app.store.write() as conn:
                patch_activity_rows(
                    conn, app.store.dialect, {key: MetricsPatch({f"{prefix}{i}": float(i)}, {f"{prefix}{i}": i})}
                )

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a:", "b:", "c:")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [row] = activity_rows(app)
    assert len(row["aggregates"]) == 3 * per_thread
    assert len(row["agg_last_updated"]) == 3 * per_thread
    assert row["aggregates"]["b:7"] == 7.0


def test_d2_patch_of_a_null_map_counts_as_empty(app):
    key = ("do_c", "u-1", "cb:b-1")
    with app.store.write() as conn:
        patch_activity_rows(conn, app.store.dialect, {key: MetricsPatch({"x": 1.0}, {"x": 1}, agg_details=["d"])})
        patch_activity_rows(conn, app.store.dialect, {key: MetricsPatch({"y": 0.1 + 0.2}, {"y": 2})})
    [row] = activity_rows(app)
    assert row["aggregates"] == {"x": 1.0, "y": 0.30000000000000004}
    assert row["agg_details"] == ["d"]  # a patch without details keeps the stored list


def test_log_appends_in_order_and_reads_by_topic(app):
    publish(app, "assess", [{"n": 1}, {"n": 2}])
    publish(app, "progress", [{"n": 3}])
    assert [e["n"] for e in topic_events(app, "assess")] == [1, 2]
    assert [e["n"] for e in topic_events(app, "dev.coursebatch.job.request")] == [3]


def test_log_concurrent_producers_never_make_a_consumer_skip(app):
    """ARCHITECTURE pitfall: a consumer must not see seq 11 commit before seq 10 and skip 10 forever."""
    topic = app.topics.assess
    producers, per_producer = 4, 25
    seen: list[int] = []
    done = threading.Event()

    def produce(n: int) -> None:
        rnd = random.Random(n)
        for i in range(per_producer):
            with app.store.write() as conn:
                app.log.append(conn, topic, [(None, f'{{"p":{n},"i":{i}}}')], 0)
                time.sleep(rnd.random() * 0.004)  # hold the transaction open after the insert

    def consume() -> None:
        while True:
            finished = done.is_set()
            with app.store.write() as conn:
                events = app.log.fetch(conn, "test-consumer", topic, 7)
                if events:
                    seen.extend(e.seq for e in events)
                    app.log.commit(conn, "test-consumer", topic, events[-1].seq)
            if finished and not events:
                return

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join()
    assert len(seen) == producers * per_producer
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


class _FlakyHandler:
    """Fails like an unavailable database on the first call, then handles nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, conn, batch):
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("select 1", {}, Exception("database is unavailable"))
        return BatchResult()


def test_internal_error_does_not_advance_the_offset(app):
    from learnagg.bootstrap import JOBS

    publish(app, "assess", [{"courseId": "x"}])
    consumer = JobConsumer(
        spec=JOBS["assessment-aggregator"],
        handler=_FlakyHandler(),
        store=app.store,
        log_=app.log,
        topics=app.topics,
        clock=app.clock,
        batch_size=10,
        retry_delay=0,
    )
    with pytest.raises(OperationalError):
        consumer.run_once()
    with app.store.read() as conn:
        assert conn.execute(select(consumer_offset.c.seq)).scalars().all() in ([], [0])
    assert topic_events(app, "telemetry.assess.failed") == []
    assert consumer.run_once() == 1
    assert len(topic_events(app, "telemetry.assess.failed")) == 1  # the bad event, failed exactly once


def test_unsupported_url_is_one_line_error():
    from learnagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unsupported database URL scheme"):
        Store("mysql://x/y")


def test_a_stored_json_null_map_is_patched_as_empty(app) -> None:
    key = {"activity_type": "Course", "activity_id": "c", "user_id": "u", "context_id": "cb:b"}
    with app.store.write() as conn:
        conn.execute(insert(user_activity_agg), [key])
        # A map column holding the JSON value null (not SQL NULL), as legacy imports may leave it.
        conn.execute(text("UPDATE user_activity_agg SET aggregates = 'null'"))
        patch_activity_rows(conn, app.store.dialect, {("c", "u", "cb:b"): MetricsPatch({"k": 1.0}, {"k": 5})})
    with app.store.read() as conn:
        stored = conn.execute(text("SELECT aggregates FROM user_activity_agg")).scalar_one()
    assert (stored if isinstance(stored, dict) else json.loads(stored)) == {"k": 1.0}
