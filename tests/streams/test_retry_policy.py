"""Retries (docs/event-log.md "Poison events and retries"): what is transient, backoff, and when a run gives up."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg.errors
import pytest
from sqlalchemy import Connection, event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from learnagg import bootstrap
from learnagg.adapters.bus.outbox import RELAY_LOCK, Outbox
from learnagg.adapters.store.store import Store
from learnagg.streams.consumer import JobConsumer, JobFailed, Worker
from learnagg.streams.handler import BatchResult, Incoming, JobSpec
from learnagg.streams.retry import backoff_delay, internal_error_reason, is_transient
from tests.support import attempts, bus_env, course, load, publish, topic_events

C, B, A = "do_course", "batch-1", "do_a1"


def _wrapped(orig: Exception) -> DBAPIError:
    """A driver error as SQLAlchemy raises it from a statement."""
    return DBAPIError.instance("SELECT 1", {}, orig, type(orig))


def _error_of(conn: Connection, sql: str, **params: Any) -> BaseException:
    try:
        with conn.begin_nested():
            conn.execute(text(sql), params)
    except Exception as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


# --- what is transient ----------------------------------------------------------------------------------------


def test_postgres_conflicts_and_lost_connections_are_transient():
    for orig in (
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.ConnectionFailure("connection failure"),
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    ):
        assert is_transient(_wrapped(orig)), orig
    for orig in (
        psycopg.errors.NumericValueOutOfRange("bigint out of range"),
        psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
        psycopg.errors.ProgramLimitExceeded("index row size exceeds maximum"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    ):
        assert not is_transient(_wrapped(orig)), orig
    assert not is_transient(RecursionError("maximum recursion depth exceeded"))
    assert not is_transient(ValueError("database is locked"))  # only driver errors can be transient


def test_real_store_errors_are_classified(app):
    with app.store.write() as conn:
        out_of_range = _error_of(conn, "UPDATE consumer_offset SET seq = :v", v=2**63)
        duplicate = _error_of(
            conn, "INSERT INTO consumer_offset (consumer, topic, seq) VALUES ('c', 't', 1), ('c', 't', 2)"
        )
    assert not is_transient(out_of_range)
    assert not is_transient(duplicate)
    if app.store.backend == "sqlite":
        assert (
            internal_error_reason(out_of_range)
            == "internal error: OverflowError: Python int too large to convert to SQLite INTEGER"
        )
    else:
        assert internal_error_reason(out_of_range) == "internal error: NumericValueOutOfRange: bigint out of range"


def test_a_locked_sqlite_database_is_transient(tmp_path):
    from learnagg.adapters.store import schema

    store = Store(f"sqlite:///{tmp_path}/locked.db")
    schema.upgrade(store)

    @event.listens_for(store.engine, "connect")
    def _no_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    store.dispose()
    holder = sqlite3.connect(f"{tmp_path}/locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError) as caught, store.write():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.dispose()
    assert "database is locked" in str(caught.value)
    assert is_transient(caught.value)


def test_a_postgres_lock_timeout_is_transient(app):
    if app.store.backend == "sqlite":
        pytest.skip("PostgreSQL row locks")
    with app.store.write() as holder:
        holder.execute(select(text("pg_advisory_xact_lock(4242)")))
        with app.store.write() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '50ms'"))
            error = _error_of(conn, "SELECT pg_advisory_xact_lock(4242)")
    assert is_transient(error)


def test_reasons_name_the_driver_error_and_are_bounded():
    assert internal_error_reason(ValueError("first\nsecond")) == "internal error: ValueError: first"
    assert internal_error_reason(ValueError()) == "internal error: ValueError"
    assert internal_error_reason(_wrapped(psycopg.errors.NumericValueOutOfRange("bigint out of range"))) == (
        "internal error: NumericValueOutOfRange: bigint out of range"
    )
    assert len(internal_error_reason(KeyError("x" * 5000))) == 500


def test_backoff_doubles_up_to_the_cap_with_jitter():
    assert [backoff_delay(n, 1.0, 8.0, lambda: 1.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [backoff_delay(n, 1.0, 8.0, lambda: 0.0) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(10_000, 2.0, 60.0) <= 60.0  # a long outage does not overflow
    assert backoff_delay(3, 0.0, 60.0) == 0.0


# --- the worker's retry policy ----------------------------------------------------------------------------------


class _Handler:
    """Counts its calls; raises a transient database error on every call when ``failing``."""

    def __init__(self, app: bootstrap.App, failing: bool = False) -> None:
        self.app = app
        self.failing = failing
        self.calls = 0

    def handle(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> BatchResult:
        self.calls += 1
        if self.failing:
            raise OperationalError("SELECT 1", {}, psycopg.errors.SerializationFailure("could not serialize access"))
        return BatchResult()


def _spec(name: str) -> JobSpec:
    return JobSpec(
        name=name,
        input_suffix=f"test.{name}",
        failed_suffix=f"test.{name}.failed",
        src=name,
        parse=lambda raw: raw,
        counter_names={},
        make_handler=_Handler,
    )


def _consumer(app: bootstrap.App, name: str, *, failing: bool, retry_delay: float = 0.0) -> JobConsumer:
    publish(app, f"dev.test.{name}", [{"n": n} for n in range(30)])
    return JobConsumer(
        spec=_spec(name),
        handler=_Handler(app, failing),
        store=app.store,
        log_=app.log,
        topics=app.topics,
        clock=app.clock,
        batch_size=1,
        retry_delay=retry_delay,
        retry_max_delay=retry_delay * 4,
    )


def _lag(app: bootstrap.App, consumer: JobConsumer) -> int:
    with app.store.read() as conn:
        return app.log.lag(conn, consumer.consumer, consumer.input_topic)


def test_until_idle_gives_up_after_max_retries_even_while_another_job_succeeds(app):
    failing = _consumer(app, "failing", failing=True)
    healthy = _consumer(app, "healthy", failing=False)
    worker = Worker([failing, healthy], poll_interval=0.01, max_retries=2)

    expected = r"^failing: the same batch failed 3 time\(s\) in a row, giving up: SerializationFailure: could not"
    with pytest.raises(JobFailed, match=expected):
        worker.start(until_idle=True)

    assert failing.handler.calls == 3  # type: ignore[attr-defined]  # the first try and two retries
    assert _lag(app, failing) == 30
    assert 0 < _lag(app, healthy) < 30  # the other job was still making progress
    assert failing.counters["retry"] == 3


def test_a_long_running_worker_keeps_retrying(app):
    failing = _consumer(app, "failing", failing=True)
    worker = Worker([failing], poll_interval=0.01, max_retries=0)
    assert worker.start(loops=5) == 5  # never idle, never gives up
    assert failing.handler.calls == 5  # type: ignore[attr-defined]


def test_the_backoff_is_respected_and_stop_ends_it(app):
    failing = _consumer(app, "failing", failing=True, retry_delay=30.0)
    worker = Worker([failing], poll_interval=0.05)
    thread = threading.Thread(target=worker.start)
    thread.start()
    deadline = time.monotonic() + 10
    while failing.handler.calls == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    time.sleep(0.3)
    assert failing.handler.calls == 1  # type: ignore[attr-defined]  # waiting 15-30 s, not spinning
    assert 14 < failing.retry_at - time.monotonic() <= 30
    started = time.monotonic()
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2


def test_a_success_resets_the_count(app):
    flaky = _consumer(app, "flaky", failing=True)
    worker = Worker([flaky], poll_interval=0.01, max_retries=1)
    worker.run_once()
    assert flaky.consecutive_failures == 1
    flaky.handler.failing = False  # type: ignore[attr-defined]
    worker.run_once()
    assert flaky.consecutive_failures == 0
    flaky.handler.failing = True  # type: ignore[attr-defined]
    worker.run_once()
    assert flaky.consecutive_failures == 1


# --- real lock timeouts on PostgreSQL ----------------------------------------------------------------------------


def _with_lock_timeout(url: str, ms: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-c%20lock_timeout%3D{ms}"


def _attempt(user: str) -> dict[str, Any]:
    answer = {"eid": "ASSESS", "ets": 5, "edata": {"score": 1, "item": {"id": "q1", "maxscore": 1}}}
    return {
        "assessmentTs": 1000,
        "courseId": C,
        "batchId": B,
        "userId": user,
        "contentId": A,
        "attemptId": "at-1",
        "events": [answer],
    }


def test_a_failure_publishing_the_failed_events_after_commit_loses_nothing(app, bus):
    """The batch commits with its failed envelope in the outbox; the relay, blocked, publishes it later."""
    if app.store.backend == "sqlite":
        pytest.skip("PostgreSQL lock timeouts")
    load(app, course(C, [A]))
    publish(app, "assess", [_attempt("u-1"), {"courseId": "no other field"}])
    store = Store(_with_lock_timeout(app.settings.database_url, 100))
    worker_app = bootstrap.build(app.settings, clock=app.clock, store=store)
    [consumer] = bootstrap.build_worker(worker_app, ["assessment-aggregator"]).consumers
    try:
        with app.store.write() as holder:
            if bus == "redis":  # an append to Redis takes no database lock: another relay that does not end
                app.store.dialect.lock_topic(holder, RELAY_LOCK)
            else:  # a producer of the failed topic that does not commit
                app.log.append(holder, app.topics.resolve("telemetry.assess.failed"), [], 0)
                app.store.dialect.lock_topic(holder, app.topics.resolve("telemetry.assess.failed"))
            assert consumer.run_once() == 2  # committed; the relay hit the lock timeout
            with app.store.read() as conn:
                # The failed envelope and the certificate request: the relay moves both or neither.
                assert sum(Outbox(app.store.dialect).pending(conn).values()) == 2
        assert topic_events(app, "telemetry.assess.failed") == []
        assert [r["user_id"] for r in attempts(app)] == ["u-1"]
        assert topic_events(app, "certificate") == []
        assert consumer.run_once() == 2  # the next round relays what the failed relay left
    finally:
        store.dispose()
    assert [r["user_id"] for r in attempts(app)] == ["u-1"]
    [failed] = topic_events(app, "telemetry.assess.failed")
    assert failed["courseId"] == "no other field"


def test_worker_until_idle_exits_1_with_one_line_while_another_job_succeeds(app, monkeypatch, capsys):
    from learnagg.entrypoints.cli import main

    if app.store.backend == "sqlite":
        pytest.skip("PostgreSQL row locks (SQLite has one writer: no other job could succeed)")
    publish(app, "assess", [_attempt("u-1")])
    publish(app, "progress", [{"edata": {"action": "something-else", "n": n}} for n in range(200)])
    topic = app.topics.assess
    with app.store.write() as conn:  # the offset rows exist and are committed
        partitions = range(app.log.partitions(conn, topic))
        for partition in partitions:
            app.log.fetch(conn, "assessment-aggregator", topic, 1, partition)
    bus_env(app, monkeypatch)
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", _with_lock_timeout(app.settings.database_url, 100))
    monkeypatch.setenv("LEARNAGG_WORKER__MAX_RETRIES", "2")
    monkeypatch.setenv("LEARNAGG_WORKER__RETRY_DELAY", "0.01")
    monkeypatch.setenv("LEARNAGG_WORKER__BATCH_SIZE", "1")
    monkeypatch.setenv("LEARNAGG_LOG__LEVEL", "ERROR")  # the retries' log records aside, the error is one line
    with app.store.write() as holder:  # another worker holding the aggregator's offsets
        for partition in partitions:
            app.log.fetch(holder, "assessment-aggregator", topic, 1, partition)
        code = main(["worker", "--until-idle"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("learnagg: error: assessment-aggregator: the same batch failed 3 time(s) in a row")
    assert "lock timeout" in err
    with app.store.read() as conn:
        assert 0 < app.log.lag(conn, "activity-aggregate-updater", app.topics.progress) < 200
