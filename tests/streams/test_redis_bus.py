"""The Redis Streams bus: the jobs drain to the embedded log's results, duplicates are skipped, trimming is safe."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import select

from learnagg import bootstrap
from learnagg.adapters.bus.outbox import Outbox
from learnagg.adapters.bus.redis_streams import RedisStreamsLog, decode_id, encode_id, stream_name
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset
from learnagg.bench.redisserver import RedisServer
from learnagg.errors import ConfigurationError
from learnagg.settings import Settings
from tests.conftest import T
from tests.streams.test_partitions import _events
from tests.streams.test_worker_crash import _comparable
from tests.support import TestClock, drain, publish, topic_events

JOB = "assessment-aggregator"
_dbs = itertools.cycle(range(1, 16))


@pytest.fixture
def redis_app(database_url: str, redis_server: RedisServer, clock: TestClock) -> Iterator[bootstrap.App]:
    """The application on the test database with its bus on a flushed Redis database."""
    application = bootstrap.build(
        Settings(database_url=database_url, bus_url=redis_server.url(next(_dbs))), clock=clock
    )
    assert isinstance(application.log, RedisStreamsLog)
    application.log.client.flushdb()
    yield application
    application.log.close()
    application.close()


@pytest.fixture
def reference(tmp_path) -> Iterator[bootstrap.App]:
    """The same application on the embedded log."""
    url = f"sqlite:///{tmp_path}/reference.db"
    store = Store(url)
    schema.upgrade(store)
    application = bootstrap.build(Settings(database_url=url), store=store, clock=TestClock(T))
    yield application
    application.close()


def _log(app: bootstrap.App) -> RedisStreamsLog:
    assert isinstance(app.log, RedisStreamsLog)
    return app.log


def test_the_jobs_drain_on_redis_to_the_embedded_logs_results(redis_app, reference) -> None:
    events = [*_events(150), "{not json"]
    for application in (redis_app, reference):
        publish(application, "assess", events)
        drain(application)
    assert _comparable(redis_app) == _comparable(reference)
    assert len(topic_events(redis_app, "telemetry.assess.failed")) == 1
    log_ = _log(redis_app)
    topic = redis_app.topics.assess
    with redis_app.store.read() as conn:
        assert log_.lag(conn, JOB, topic) == 0
        rows = conn.execute(
            select(consumer_offset.c.partition, consumer_offset.c.seq).where(consumer_offset.c.consumer == JOB)
        ).all()
    assert rows and all(seq > 0 for _, seq in rows)
    for partition, seq in rows:  # a position is the id of the partition's last handled entry
        [(last_id, _)] = log_.client.xrevrange(stream_name(topic, partition), count=1)
        assert decode_id(seq) == last_id


def test_a_crash_between_append_and_mark_sent_repeats_a_mid_that_is_skipped(redis_app, reference) -> None:
    events = [orjson.dumps({**e, "mid": f"m-{n}"}).decode() for n, e in enumerate(_events(60))]
    outbox = Outbox(redis_app.store.dialect)
    with redis_app.store.write() as conn:
        outbox.add(conn, redis_app.topics.assess, [(None, e) for e in events], T, consumer="producer", partition=0)
    with pytest.raises(RuntimeError), redis_app.store.write() as conn:
        outbox.relay(conn, redis_app.log, T)  # appended to the streams ...
        raise RuntimeError("crash before the rows are marked sent")
    worker = drain(redis_app, [JOB])  # ... and appended again by the next relay
    published = [orjson.loads(e)["mid"] for e in _raw(redis_app)]
    assert sorted(published) == sorted([f"m-{n}" for n in range(60)] * 2)
    assert worker.consumers[0].counters["duplicate"] == 60

    publish(reference, "assess", events)
    drain(reference, [JOB])
    assert _comparable(redis_app) == _comparable(reference)


def _raw(app: bootstrap.App) -> list[str]:
    with app.store.read() as conn:
        return [e.payload for e in app.log.read(conn, app.topics.assess)]  # type: ignore[attr-defined]


def test_trimming_never_drops_an_unconsumed_entry(redis_app) -> None:
    log_ = _log(redis_app)
    topic = redis_app.topics.assess
    publish(redis_app, "assess", _events(80))
    with redis_app.store.read() as conn:
        assert log_.trim(conn) == 0  # no job has a position yet: nothing goes
    drain(redis_app, [JOB])
    publish(redis_app, "assess", _events(40))
    with redis_app.store.read() as conn:
        before = log_.lags(conn, JOB, topic)
        cautious = RedisStreamsLog(redis_app.store.dialect, log_.url, readers={topic: [JOB, "a-job-not-started"]})
        assert cautious.trim(conn) == 0  # one reader has consumed nothing
        cautious.close()
        assert log_.trim(conn) > 0
        assert log_.lags(conn, JOB, topic) == before  # every unconsumed entry is still there
        for partition in range(log_.partitions(conn, topic)):
            position = log_.offset(conn, JOB, topic, partition=partition)
            stream = stream_name(topic, partition)
            kept = log_.client.xrange(stream)
            assert all(encode_id(entry_id) >= position for entry_id, _ in kept)
            assert len(kept) == before[partition] + (1 if position else 0)  # the last handled entry stays
    assert sum(before.values()) == 40
    drain(redis_app, [JOB])
    with redis_app.store.read() as conn:
        assert log_.lag(conn, JOB, topic) == 0


def test_an_unknown_bus_url_is_refused(database_url) -> None:
    with pytest.raises(ConfigurationError, match="redis://host:port/db"):
        bootstrap.build(Settings(database_url=database_url, bus_url="kafka://broker:9092"))
