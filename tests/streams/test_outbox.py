"""The outbox: emitted events survive a crash between commit and relay, are relayed once, repeated mids skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert, select, text

from learnagg import bootstrap
from learnagg.adapters.bus.outbox import Outbox
from learnagg.adapters.bus.redis_streams import RedisStreamsLog
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import applied_mid, consumer_offset, event_log
from learnagg.bench.redisserver import RedisServer
from learnagg.domain.messages import issue_certificate_request
from learnagg.entrypoints.cli import main
from learnagg.services.publishing import SOURCE
from learnagg.settings import Settings
from tests.streams.test_partitions import _events
from tests.streams.test_worker_crash import _comparable
from tests.support import TestClock, drain, publish, topic_events

JOB = "assessment-aggregator"


def _pending(app: bootstrap.App) -> int:
    with app.store.read() as conn:
        return sum(Outbox(app.store.dialect).pending(conn).values())


def _crash_after_commit(app: bootstrap.App) -> None:
    """Handle every batch and commit, but die before any relay (the relay step never runs)."""
    [consumer] = bootstrap.build_worker(app, [JOB]).consumers
    consumer.delivery.after_commit = lambda: 0  # type: ignore[method-assign]
    consumer.ownership.refresh(force=True)
    while consumer._run_batch(0):
        pass


@pytest.fixture
def redis_app(database_url: str, redis_server: RedisServer, clock: TestClock) -> Iterator[bootstrap.App]:
    """The application with its bus on a flushed database of the private Redis (one partition per topic)."""
    application = bootstrap.build(Settings(database_url=database_url, bus_url=redis_server.url(13)), clock=clock)
    assert isinstance(application.log, RedisStreamsLog)
    application.log.client.flushdb()
    yield application
    application.log.close()
    application.close()


def _crash_then_restart_loses_nothing(app: bootstrap.App, tmp_path: Path) -> dict:
    events = [*_events(120), "{not json"]
    publish(app, "assess", events)
    _crash_after_commit(app)
    assert topic_events(app, "certificate") == [] and topic_events(app, "telemetry.assess.failed") == []
    assert _pending(app) == 121  # 120 certificate requests and one failed envelope wait in the outbox

    drain(app, [JOB])  # a restarted worker relays the leftovers first
    assert _pending(app) == 0
    certificates = topic_events(app, "certificate")
    assert len({e["mid"] for e in certificates}) == len(certificates) == 120
    [failed] = topic_events(app, "telemetry.assess.failed")

    url = f"sqlite:///{tmp_path}/reference.db"
    store = Store(url)
    schema.upgrade(store)
    reference = bootstrap.build(Settings(database_url=url), store=store)
    try:
        publish(reference, "assess", events)
        drain(reference, [JOB])
        assert _comparable(app) == _comparable(reference)
    finally:
        reference.close()
    return failed


def test_a_crash_between_commit_and_relay_loses_nothing(app, tmp_path) -> None:
    failed = _crash_then_restart_loses_nothing(app, tmp_path)
    assert failed["metadata"]["failed_id"] == f"{JOB}:0:121"


def test_a_crash_between_commit_and_relay_loses_nothing_on_redis(redis_app, tmp_path) -> None:
    failed = _crash_then_restart_loses_nothing(redis_app, tmp_path)
    with redis_app.store.read() as conn:
        last = redis_app.log.read(conn, redis_app.topics.assess)[-1].seq  # type: ignore[attr-defined]
    assert failed["metadata"]["failed_id"] == f"{JOB}:0:{last}"  # the position of the bad event: the last one


def _relay_twice(app: bootstrap.App) -> None:
    publish(app, "assess", _events(40))
    _crash_after_commit(app)
    outbox = Outbox(app.store.dialect)
    with app.store.write() as conn:
        assert outbox.relay(conn, app.log, 0) == 40
    with app.store.write() as conn:
        assert outbox.relay(conn, app.log, 0) == 0
    assert len(topic_events(app, "certificate")) == 40


def test_a_relay_run_twice_emits_nothing_twice(app) -> None:
    _relay_twice(app)


def test_a_relay_run_twice_emits_nothing_twice_to_a_consumer_on_redis(redis_app) -> None:
    _relay_twice(redis_app)
    # A relay that appended and then crashed before deleting its rows appends them again (same mids) ...
    outbox = Outbox(redis_app.store.dialect)
    requests = [issue_certificate_request(course_id="do_c", batch_id="b-1", user_id=f"u-{n}", now=1) for n in range(5)]
    with redis_app.store.write() as conn:
        outbox.add(
            conn,
            redis_app.topics.certificate_request,
            [(None, orjson.dumps(r).decode()) for r in requests],
            1,
            consumer=JOB,
            partition=0,
        )
    with pytest.raises(RuntimeError), redis_app.store.write() as conn:
        outbox.relay(conn, redis_app.log, 0)
        raise RuntimeError("crash before the relayed rows are deleted")
    with redis_app.store.write() as conn:
        assert outbox.relay(conn, redis_app.log, 0) == 5
    assert len(topic_events(redis_app, "certificate")) == 50
    # ... and the consumer applies each mid once.
    [consumer] = drain(redis_app, ["certificate-pre-processor"]).consumers
    assert consumer.counters["total"] == 45 and consumer.counters["duplicate"] == 5


def test_concurrent_relays_move_each_row_once(app) -> None:
    publish(app, "assess", _events(200))
    _crash_after_commit(app)
    outbox = Outbox(app.store.dialect)
    moved: list[int] = []

    def relay() -> None:
        total = 0
        while True:
            with app.store.write() as conn:
                count = outbox.relay(conn, app.log, 0, limit=7)
            total += count
            if not count:
                moved.append(total)
                return

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(moved) == 200
    mids = [e["mid"] for e in topic_events(app, "certificate")]
    assert len(mids) == len(set(mids)) == 200


def test_a_repeated_mid_is_skipped_and_counted(app) -> None:
    request = issue_certificate_request(course_id="do_c", batch_id="b-1", user_id="u-1", now=1)
    other = issue_certificate_request(course_id="do_c", batch_id="b-1", user_id="u-2", now=1)
    publish(app, "certificate", [request, request, other])
    first = drain(app, ["certificate-pre-processor"]).consumers[0]
    publish(app, "certificate", [request])
    again = drain(app, ["certificate-pre-processor"]).consumers[0]
    assert first.counters["duplicate"] == 1 and again.counters["duplicate"] == 1
    assert first.counters["total"] == 2 and again.counters["total"] == 0
    with app.store.read() as conn:
        stored = conn.execute(select(applied_mid.c.mid).order_by(applied_mid.c.mid)).scalars().all()
    assert stored == sorted([request["mid"], other["mid"]])


def test_applied_mids_are_forgotten_after_their_ttl(app) -> None:
    request = issue_certificate_request(course_id="do_c", batch_id="b-1", user_id="u-1", now=1)
    publish(app, "certificate", [request])
    drain(app, ["certificate-pre-processor"])
    with app.store.write() as conn:
        assert Outbox(app.store.dialect).forget(conn, "certificate-pre-processor", app.clock() + 1) == 1
    publish(app, "certificate", [request])
    assert drain(app, ["certificate-pre-processor"]).consumers[0].counters["total"] == 1


def test_inspect_consumers_shows_the_outbox_pending_per_partition(app, monkeypatch, capsys) -> None:
    publish(app, "assess", _events(10))
    _crash_after_commit(app)
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", app.settings.database_url)
    assert main(["inspect", "consumers"]) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_job = {(r["job"], r["partition"]): r for r in lines}
    assert set(by_job) == {(JOB, 0), ("activity-aggregate-updater", 0), ("certificate-pre-processor", 0)}
    row = by_job[(JOB, 0)]
    assert row["outbox_pending"] == 10 and row["position"] == 10 and row["lag"] == 0
    assert set(row) == {"job", "partition", "owner", "lease_until", "position", "lag", "outbox_pending"}
    assert by_job[("certificate-pre-processor", 0)]["outbox_pending"] == 0


def test_inspect_consumers_shows_what_the_api_left_in_the_outbox(app, monkeypatch, capsys) -> None:
    # What a request leaves when its process dies between the commit and the relay (on a bus outside the store).
    with app.store.write() as conn:
        events = [("u-1", '{"mid": "a"}'), ("u-2", '{"mid": "b"}')]
        Outbox(app.store.dialect).add(conn, app.topics.resolve("assess"), events, 1, consumer=SOURCE, partition=0)
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", app.settings.database_url)
    assert main(["inspect", "consumers"]) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1] == {"job": "api", "partition": None, "owner": None, "lease_until": None, "position": None,
                         "lag": None, "outbox_pending": 2}  # fmt: skip
    assert all(r["outbox_pending"] == 0 for r in lines[:-1])


def test_revision_0006_keeps_the_events_and_offsets_of_an_older_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    store = Store(url)
    schema.upgrade(store, "0005")
    events = _events(30)
    with store.engine.begin() as conn:  # a 0005 database: no partition columns yet
        for n, e in enumerate(events, start=1):
            conn.execute(
                text("INSERT INTO event_log (seq, topic, key, payload, created_on) VALUES (:s, :t, NULL, :p, 1)"),
                {"s": n, "t": "dev.telemetry.assess", "p": orjson.dumps(e).decode()},
            )
        conn.execute(
            text("INSERT INTO consumer_offset (consumer, topic, seq) VALUES (:c, :t, 12)"),
            {"c": JOB, "t": "dev.telemetry.assess"},
        )
    schema.upgrade(store)
    app = bootstrap.build(Settings(database_url=url), store=store)
    try:
        with app.store.write() as conn:
            app.log.store_default_partitions(conn, 8)  # `init` after the upgrade: only new topics get 8
            assert conn.execute(select(event_log.c.partition).distinct()).scalars().all() == [0]
            assert app.log.partitions(conn, app.topics.assess) == 1
            assert app.log.offset(conn, JOB, app.topics.assess) == 12
            assert app.log.lag(conn, JOB, app.topics.assess) == 18
        publish(app, "assess", _events(1))
        drain(app, [JOB])
        with app.store.read() as conn:
            [(partition, seq)] = conn.execute(
                select(consumer_offset.c.partition, consumer_offset.c.seq).where(consumer_offset.c.consumer == JOB)
            ).all()
        assert (partition, seq) == (0, 31)
        assert len(topic_events(app, "certificate")) == 19  # the 18 unread events and the new one
    finally:
        app.close()


def test_revision_0007_upgrades_to_empty_outbox_tables(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/six.db")
    schema.upgrade(store, "0006")
    with store.engine.begin() as conn:
        conn.execute(insert(event_log), [{"topic": "dev.telemetry.assess", "payload": "{}", "created_on": 1}])
    schema.upgrade(store)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM event_log")).scalar() == 1
    store.dispose()
