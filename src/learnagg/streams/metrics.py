"""The consumer lag of each stream job, computed from the event log each time the metrics are scraped."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from learnagg.app import App
from learnagg.errors import first_line
from learnagg.streams.handler import JobSpec

log = logging.getLogger(__name__)

LAG_METRIC = "learnagg_job_lag_events"


@runtime_checkable
class LagReader(Protocol):
    """A log that can tell how many events of a topic a consumer has not handled yet."""

    def lags(self, conn: Connection, consumer: str, topic: str) -> dict[int, int]:
        """Per partition of ``topic``: its events after ``consumer``'s committed position there."""
        ...


class JobLag:
    """Prometheus collector: ``learnagg_job_lag_events{job,partition}``, one store read per scrape.

    When the store cannot be read the family is served without samples (and a warning is logged), so a scrape
    never fails because the database is down: ``learnagg_job_up`` and the readiness check report that.
    """

    def __init__(self, app: App, jobs: Sequence[tuple[str, str]]) -> None:
        """``jobs``: (job name, which is also its consumer group, input topic) pairs."""
        self.app = app
        self.jobs = list(jobs)

    def describe(self) -> Iterable[Metric]:
        """The family without samples (registration must not query the store)."""
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        """The lag of every job, read in one transaction."""
        family = self._family()
        reader = self.app.log
        if not isinstance(reader, LagReader):
            return [family]
        try:
            with self.app.store.read() as conn:
                lags = [(job, reader.lags(conn, job, topic)) for job, topic in self.jobs]
        except SQLAlchemyError as exc:
            log.warning("consumer lag not available: %s", first_line(exc))
            return [family]
        for job, per_partition in lags:
            for partition, lag in sorted(per_partition.items()):
                family.add_metric([job, str(partition)], lag)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            LAG_METRIC, "Events published to the job's input topic and not yet consumed.", labels=["job", "partition"]
        )


def job_lag(app: App, specs: Iterable[JobSpec]) -> JobLag:
    """The lag collector of the given jobs, on their input topics under the App's environment."""
    return JobLag(app, [(spec.name, app.topics.name(spec.input_suffix)) for spec in specs])


def watch_lag(app: App, specs: Iterable[JobSpec]) -> None:
    """Serve the jobs' lag with the App's metrics (computed when scraped)."""
    app.metrics.on_scrape("job_lag", job_lag(app, specs))
