"""The Redis Streams bus: the jobs drain to the embedded log's results, duplicates are skipped, trimming is safe."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from learnagg import bootstrap
from learnagg.adapters.bus.outbox import Outbox
from learnagg.adapters.bus.redis_streams import RedisStreamsLog, decode_id, encode_id, stream_name
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import consumer_offset
from learnagg.bench.redisserver import RedisServer
from learnagg.entrypoints.api.app import create_app
from learnagg.errors import ConfigurationError
from learnagg.services import assessments, publishing
from learnagg.services.content_state import update_content_state
from learnagg.settings import Settings
from tests.conftest import T
from tests.entrypoints.api.support import Api, ok
from tests.entrypoints.api.test_content_state import add_batch
from tests.streams.test_partitions import _events
from tests.streams.test_worker_crash import _comparable
from tests.support import TestClock, attempts, course, drain, load, publish, topic_events

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
    """The same application on the embedded log (whatever LEARNAGG_BUS_URL says)."""
    url = f"sqlite:///{tmp_path}/reference.db"
    store = Store(url)
    schema.upgrade(store)
    application = bootstrap.build(Settings(database_url=url, bus_url="db"), store=store, clock=TestClock(T))
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


# --- API publishes go through the outbox on Redis (docs/scale-out.md "The outbox") ---------------------------------

COURSE, BATCH, CONTENT, USER = "do_c1", "b-1", "do_a1", "u-1"


def _attempt(attempt_id: str = "at-1") -> dict:
    answer = {"eid": "ASSESS", "ets": 10, "edata": {"score": 1, "item": {"id": "q1", "maxscore": 1}}}
    return {
        "assessmentTs": T - 5,
        "courseId": COURSE,
        "batchId": BATCH,
        "contentId": CONTENT,
        "attemptId": attempt_id,
        "events": [answer],
    }


def _stream_entries(app: bootstrap.App) -> dict[str, int]:
    client = _log(app).client
    return {name: int(client.xlen(name)) for name in sorted(client.keys("*"))}


def _outbox_rows(app: bootstrap.App) -> int:
    with app.store.read() as conn:
        return sum(Outbox(app.store.dialect).pending(conn).values())


@pytest.fixture
def course_app(redis_app: bootstrap.App) -> bootstrap.App:
    """``redis_app`` with course COURSE (leaf CONTENT) and its ongoing batch BATCH."""
    load(redis_app, course(COURSE, [CONTENT]))
    add_batch(redis_app, BATCH, COURSE)
    return redis_app


def _refuse_consumption_writes(app: bootstrap.App) -> None:
    """A trigger failing every consumption write: the request's transaction fails after its publish step."""
    with app.store.write() as conn:
        if app.store.backend == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON user_content_consumption BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON user_content_consumption FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_a_request_whose_transaction_fails_after_publishing_publishes_nothing(course_app) -> None:
    _refuse_consumption_writes(course_app)
    with pytest.raises(DBAPIError):  # submit publishes the attempt, then completes the content: refused
        assessments.send_assessments(course_app, user_id=USER, assessments=[_attempt()], now=T, submit=True)
    with pytest.raises(DBAPIError):  # the progress event is published before the consumption rows are written
        update_content_state(course_app, user_id=USER, contents=[], assessments=[_attempt("at-2")], now=T)
    assert _stream_entries(course_app) == {}
    assert _outbox_rows(course_app) == 0


def test_a_crash_between_commit_and_relay_is_delivered_by_the_next_relay(course_app) -> None:
    events = [(None, orjson.dumps({**_attempt(), "userId": USER, "mid": "m-1"}).decode())]
    with course_app.store.write() as conn:  # committed; the process dies before relaying
        publishing.append(conn, course_app, course_app.topics.assess, events, T)
    assert _stream_entries(course_app) == {} and _outbox_rows(course_app) == 1
    drain(course_app, [JOB])  # a worker relays what it finds in the outbox, then reads it
    assert [e["mid"] for e in topic_events(course_app, "assess")] == ["m-1"]
    assert _outbox_rows(course_app) == 0
    assert [a["attempt_id"] for a in attempts(course_app)] == ["at-1"]


def test_a_requests_events_are_on_the_streams_when_the_response_returns(course_app) -> None:
    service = create_app(course_app)
    with TestClient(service, raise_server_exceptions=False) as client:
        api = Api(client, course_app, service.state.token_keys).as_user(USER)
        ok(api.post("/v1/assess/submit", {"assessments": [_attempt()]}))
        assert [e["attemptId"] for e in topic_events(course_app, "assess")] == ["at-1"]
        assert [e["edata"]["userId"] for e in topic_events(course_app, "progress")] == [USER]
        ok(api.patch("/v1/content/state/update", {"assessments": [{**_attempt("at-2"), "userId": USER}]}))
    assert [e["attemptId"] for e in topic_events(course_app, "assess")] == ["at-1", "at-2"]
    assert len(topic_events(course_app, "progress")) == 2
    assert _outbox_rows(course_app) == 0
