"""The one place that builds settings, store, log and jobs; tests call it with other parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Literal

from learnagg.adapters.bus import redis_streams
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.bus.outbox import Outbox, OutboxLog
from learnagg.adapters.cache import build_cache
from learnagg.adapters.store.store import Store
from learnagg.app import App
from learnagg.domain.assess_event import parse_assessment_event
from learnagg.domain.clock import Clock, system_clock
from learnagg.domain.messages import ASSESSMENT_AGGREGATOR
from learnagg.domain.topics import Topics
from learnagg.errors import ConfigurationError
from learnagg.services import group_cache
from learnagg.settings import Settings, load_settings
from learnagg.streams import activity_updater, assessment_aggregator, certificate_preprocessor
from learnagg.streams.consumer import JobConsumer, Worker
from learnagg.streams.handler import BatchResult, Handler, JobSpec


def _assessment_handler(app: App) -> Handler[Any]:
    return assessment_aggregator.AssessmentAggregator(
        dialect=app.store.dialect,
        log=app.log,
        topics=app.topics,
        clock=app.clock,
        settings=app.settings.assessment,
        legacy=app.settings.legacy,
    )


# The job table: one row per stream job, mapping its input topic to its handler (ARCHITECTURE).
JOBS: dict[str, JobSpec] = {
    "assessment-aggregator": JobSpec(
        name="assessment-aggregator",
        input_suffix="telemetry.assess",
        failed_suffix="telemetry.assess.failed",
        src=ASSESSMENT_AGGREGATOR,
        parse=parse_assessment_event,
        counter_names=assessment_aggregator.COUNTERS,
        make_handler=_assessment_handler,
    ),
    "activity-aggregate-updater": JobSpec(
        name="activity-aggregate-updater",
        input_suffix="coursebatch.job.request",
        failed_suffix="activity.agg.failed",
        src=activity_updater.ACTIVITY_AGGREGATE_UPDATER,
        parse=activity_updater.parse_progress_event,
        counter_names=activity_updater.COUNTERS,
        make_handler=activity_updater.ActivityUpdater,
        skip_applied_mids=False,  # replays are deduplicated per content by `dedup_key` (dedup-skipped-count)
    ),
    "certificate-pre-processor": JobSpec(
        name="certificate-pre-processor",
        input_suffix="issue.certificate.request",
        failed_suffix="issue.certificate.failed",
        src=certificate_preprocessor.COLLECTION_CERT_PRE_PROCESSOR,
        parse=certificate_preprocessor.parse_certificate_request,
        counter_names=certificate_preprocessor.COUNTERS,
        make_handler=certificate_preprocessor.CertificatePreProcessor,
    ),
}


def _invalidate_group_cache(app: App) -> Callable[[BatchResult], None] | None:
    """After a batch commits, drop the cached group aggregates of every learner whose aggregates changed (S6)."""
    if not app.cache.enabled:
        return None

    def invalidate(result: BatchResult) -> None:
        if result.changed_users:
            group_cache.invalidate_for_users(app.store, app.cache, result.changed_users)

    return invalidate


def build(settings: Settings | None = None, *, clock: Clock | None = None, store: Store | None = None) -> App:
    """Build the application parts from settings (loaded from the environment when not given)."""
    settings = settings or load_settings()
    store = store or Store(settings.database_url)
    topics = Topics(settings.env)
    return App(
        settings=settings,
        store=store,
        log=_bus(settings.bus_url, store, topics),
        topics=topics,
        clock=clock or system_clock,
        cache=build_cache(settings.group_agg.cache.enabled, settings.redis_url, settings.group_agg.cache.ttl_seconds),
    )


def _bus(url: str, store: Store, topics: Topics) -> DatabaseLog:
    """The event bus named by ``bus_url``: the embedded log (empty, ``db``) or Redis Streams (``redis://``, or
    ``redis+cluster://host:port[,host:port…]`` for a Redis Cluster)."""
    if not url or url in ("db", "database"):
        return DatabaseLog(store.dialect)
    if url.startswith(redis_streams.SCHEMES):
        readers: dict[str, list[str]] = {}
        for spec in JOBS.values():
            readers.setdefault(topics.name(spec.input_suffix), []).append(spec.name)
        return redis_streams.RedisStreamsLog(store.dialect, url, readers=readers)
    raise ConfigurationError(
        f"unsupported LEARNAGG_BUS_URL {url!r}: use empty or 'db' (the embedded log), redis://host:port/db"
        " or redis+cluster://host:port[,host:port...]"
    )


def _configured(spec: JobSpec, app: App) -> JobSpec:
    """The job's row with its parser bound to the settings (the assessment parser's answer limit)."""
    if spec.parse is parse_assessment_event:
        limit = app.settings.assessment.max_questions
        return replace(spec, parse=partial(parse_assessment_event, max_questions=limit))
    return spec


def job_names() -> list[str]:
    """The names of the stream jobs, for `learnagg worker --job`."""
    return list(JOBS)


def build_worker(
    app: App,
    jobs: Sequence[str] | None = None,
    *,
    max_retries: int | Literal["settings"] | None = "settings",
    own_process: bool = True,
    partitions: Sequence[int] | None = None,
    owner: str | None = None,
) -> Worker:
    """A worker driving the named jobs (all when None); ``own_process`` is False for jobs run inside `serve`.

    ``max_retries`` bounds the consecutive failures of one batch in a run that must end (``until_idle``):
    ``worker.max_retries`` by default, ``None`` to retry forever, ``0`` to give up at the first failure.
    ``partitions`` pins the partitions every job reads (None: an even share among the live workers); ``owner``
    is the worker id holding the leases (``<hostname>:<pid>`` by default).
    """
    names = list(jobs) if jobs else job_names()
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise ConfigurationError(f"unknown job {unknown[0]!r}; known jobs: {', '.join(JOBS)}")
    ws = app.settings.worker
    consumers = [_consumer(app, JOBS[n], partitions=partitions, owner=owner, own_process=own_process) for n in names]
    retries = ws.max_retries if max_retries == "settings" else max_retries
    return Worker(consumers, poll_interval=ws.poll_interval, max_retries=retries)


def _consumer(
    app: App, spec: JobSpec, *, partitions: Sequence[int] | None, owner: str | None, own_process: bool
) -> JobConsumer:
    """One job's consumer; its handler emits through the outbox, relayed after each commit (docs/scale-out.md)."""
    ws = app.settings.worker
    emitter = OutboxLog(app.log, Outbox(app.store.dialect))
    return JobConsumer(
        spec=_configured(spec, app),
        handler=spec.make_handler(replace(app, log=emitter)),
        store=app.store,
        log_=app.log,
        topics=app.topics,
        clock=app.clock,
        batch_size=ws.batch_size,
        poll_interval=ws.poll_interval,
        retry_delay=ws.retry_delay,
        retry_max_delay=ws.retry_max_delay,
        after_commit=_invalidate_group_cache(app),
        pause_gc=own_process,
        metrics=app.metrics,
        owner=owner,
        lease_seconds=ws.lease_seconds,
        partitions=partitions,
        emitter=emitter,
        applied_mid_ttl_seconds=ws.applied_mid_ttl_seconds,
    )
