"""Job metrics (docs/operations.md "Metrics"): counters under the reference names, batch durations, job_up, lag."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg.errors
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from learnagg import bootstrap
from learnagg.settings import Settings
from learnagg.streams.consumer import JobConsumer, Worker
from learnagg.streams.handler import BatchResult, Incoming, JobSpec
from learnagg.streams.metrics import watch_lag
from tests.support import course, drain, golden_event, load, log_events, publish

COURSE = "do_2128415652377067521125"
CONTENT = "do_212686723743318016173"
AGG = "assessment-aggregator"
ACT = "activity-aggregate-updater"
CERT = "certificate-pre-processor"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(app: bootstrap.App) -> Samples:
    """Every sample the App's metrics serve, keyed by (sample name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(app.metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def counters(app: bootstrap.App, job: str) -> dict[str, float]:
    """``learnagg_job_events_total`` of one job: {counter name: value} (zeros included)."""
    return {
        dict(labels)["counter"]: value
        for (name, labels), value in samples(app).items()
        if name == "learnagg_job_events_total" and dict(labels)["job"] == job
    }


def value(app: bootstrap.App, name: str, **labels: str) -> float | None:
    return samples(app).get((name, tuple(sorted(labels.items()))))


def _known_events(app: bootstrap.App) -> None:
    """The golden assessment, its replay, one event without courseId, one line that is not JSON, a bad progress."""
    load(app, course(COURSE, [CONTENT]))
    missing_course = golden_event()
    del missing_course["courseId"]
    publish(app, "assess", [golden_event(), "not json", missing_course])
    publish(app, "progress", [["not", "an", "object"]])


def test_counters_after_a_drain_are_the_reference_counters_with_exact_values(app):
    _known_events(app)
    worker = drain(app)
    publish(app, "assess", [golden_event()])  # a replay: not newer, skipped
    worker = Worker([*worker.consumers])
    worker.start(until_idle=True)

    assert counters(app, AGG) == {
        "batch-success-count": 1,
        "skipped-event-count": 1,
        "ignored-event-count": 0,
        "failed-event-count": 2,
        "recompute-agg-event-count": 0,
        "certificate-issue-event-count": 1,
        "retry": 0,
        "poison": 0,
    }
    assert counters(app, ACT) == {
        "success-event-count": 0,
        "failed-event-count": 1,
        "skipped-event-count": 0,
        "db-read-count": 0,
        "db-update-count": 0,
        "processed-enrolment-count": 0,
        "enrolment-complete-count": 0,
        "cert-issue-events-count": 0,
        "dedup-skipped-count": 0,
        "retry": 0,
        "poison": 0,
    }
    # The certificate request the aggregator emitted was consumed: the learner is not enrolled, so skipped.
    assert counters(app, CERT)["total-events-count"] == 1
    assert counters(app, CERT)["skipped-events-count"] == 1
    # The metrics and the counters the worker prints agree, name for name.
    for consumer in worker.consumers:
        served = counters(app, consumer.spec.name)
        assert {k: v for k, v in served.items() if v} == {k: v for k, v in consumer.reference_counters().items() if v}


def test_batch_durations_count_committed_batches_and_job_up_follows_the_loop(app):
    _known_events(app)
    # One batch per partition that had events (the default batch holds them all); an empty poll is not a batch.
    agg_batches, act_batches = (len({e.partition for e in log_events(app, topic)}) for topic in ("assess", "progress"))
    drain(app)
    assert value(app, "learnagg_job_batch_seconds_count", job=AGG) == agg_batches >= 1
    assert value(app, "learnagg_job_batch_seconds_count", job=ACT) == act_batches == 1
    assert value(app, "learnagg_job_batch_seconds_count", job=CERT) == 1  # the one request the aggregator emitted
    assert value(app, "learnagg_job_batch_seconds_sum", job=AGG) > 0
    assert value(app, "learnagg_job_up", job=AGG) == 0  # the drain is over

    worker = bootstrap.build_worker(app, [AGG])
    worker.poll_interval = 0.01
    thread = threading.Thread(target=worker.start)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while value(app, "learnagg_job_up", job=AGG) != 1:
            assert time.monotonic() < deadline, "job_up never became 1"
            time.sleep(0.01)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert value(app, "learnagg_job_up", job=AGG) == 0


def lag(app: bootstrap.App, job: str) -> float:
    """``learnagg_job_lag_events`` of one job, summed over the partitions of its topic (one sample each)."""
    found = {
        dict(labels)["partition"]: value
        for (name, labels), value in samples(app).items()
        if name == "learnagg_job_lag_events" and dict(labels)["job"] == job
    }
    with app.store.read() as conn:
        count = app.log.partitions(conn, app.topics.name(bootstrap.JOBS[job].input_suffix), fix=False)
    assert sorted(found, key=int) == [str(p) for p in range(count)]
    return sum(found.values())


def test_lag_counts_unconsumed_events_and_falls_to_zero(app):
    watch_lag(app, bootstrap.JOBS.values())
    publish(app, "assess", [golden_event()] * 3)
    publish(app, "progress", [["not", "an", "object"]] * 2)

    assert lag(app, AGG) == 3
    assert lag(app, ACT) == 2
    assert lag(app, CERT) == 0

    drain(app, [AGG])
    assert lag(app, AGG) == 0
    assert lag(app, CERT) == 1  # the request the aggregator emitted
    drain(app)
    for job in (AGG, ACT, CERT):
        assert lag(app, job) == 0


def test_lag_is_left_out_not_an_error_when_the_store_cannot_be_read(tmp_path):
    broken = bootstrap.build(Settings(database_url=f"sqlite:///{tmp_path}/no-schema.db"))
    try:
        watch_lag(broken, bootstrap.JOBS.values())
        text = broken.metrics.render().decode()
    finally:
        broken.close()
    assert "# TYPE learnagg_job_lag_events gauge" in text
    assert "learnagg_job_lag_events{" not in text


# --- a retried batch is counted once ------------------------------------------------------------------------


class _FailsOnce:
    """Counts each event as a success, but the first batch fails with a transient error after counting."""

    def __init__(self, _app: Any = None) -> None:
        self.calls = 0

    def handle(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> BatchResult:
        self.calls += 1
        result = BatchResult()
        result.counters["success"] += len(batch)
        if self.calls == 1:
            orig = psycopg.errors.SerializationFailure("could not serialize access")
            raise DBAPIError.instance("SELECT 1", {}, orig, type(orig))
        return result


def test_a_retried_batch_is_counted_once_and_the_retry_is_counted(app):
    spec = JobSpec(
        name="flaky",
        input_suffix="test.flaky",
        failed_suffix="test.flaky.failed",
        src="flaky",
        parse=lambda raw: raw,
        counter_names={"success": "success-event-count"},
        make_handler=_FailsOnce,
    )
    publish(app, "dev.test.flaky", [{"n": n} for n in range(5)], key="one-partition")  # one batch
    consumer = JobConsumer(
        spec=spec,
        handler=_FailsOnce(),
        store=app.store,
        log_=app.log,
        topics=app.topics,
        clock=app.clock,
        batch_size=10,
        retry_delay=0.0,
        retry_max_delay=0.0,
        metrics=app.metrics,
    )
    Worker([consumer], poll_interval=0.01, max_retries=3).start(until_idle=True)

    assert counters(app, "flaky") == {"success-event-count": 5, "retry": 1, "poison": 0}
    assert value(app, "learnagg_job_batch_seconds_count", job="flaky") == 1  # only the committed batch


def test_two_apps_in_one_process_keep_their_own_values(app):
    other = bootstrap.build(app.settings)
    try:
        _known_events(app)
        drain(app)
        assert counters(app, AGG)["batch-success-count"] == 1
        assert counters(other, AGG) == {}
    finally:
        other.close()
