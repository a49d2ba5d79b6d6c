"""Prometheus metrics: one registry per App, the job and HTTP metric families, and the multi-process mode.

Every App owns a :class:`Metrics` (its own ``CollectorRegistry``), so two Apps in one process (tests, embedded
tools) never mix their values. Collectors that must read something when scraped (the consumer lag, which queries
the store) are attached with :meth:`Metrics.on_scrape` and run only when the metrics are rendered.

Multi-process mode (``learnagg serve --workers N``): when ``PROMETHEUS_MULTIPROC_DIR`` is set, prometheus-client keeps
each process's values in files of that directory and :meth:`Metrics.exposed` sums them over all processes, so any
HTTP worker answers ``/metrics`` for the whole service (docs/operations.md "Metrics").
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"  # the route label of a request no route matched (never the raw path)

# Seconds. A batch of 500 events takes from a few milliseconds (nothing to do) to seconds (a cold PostgreSQL).
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# No ``*_created`` series: they double the output and the Prometheus text format does not use them.
disable_created_metrics()


def multiprocess_dir() -> str | None:
    """The multi-process directory when that mode is on, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(directory: str) -> None:
    """Keep metric values in files of ``directory`` from now on, summed over every process that shares it.

    Must run before the first labelled value is created in this process; child processes started afterwards
    inherit the environment variable and start in this mode.
    """
    os.environ[MULTIPROC_ENV] = directory
    _values.ValueClass = _values.get_value_class()


def share_between_processes() -> str:
    """Put this process, and every process it starts afterwards, in multi-process mode; returns the directory.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used as given (it must be emptied before the service starts);
    otherwise a fresh temporary directory is created and removed when this process exits.
    """
    directory = multiprocess_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="learnagg-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    enable_multiprocess(directory)
    return directory


class _ScrapeTime:
    """A collector that runs the collectors attached with :meth:`Metrics.on_scrape`, when the metrics are read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.collectors: dict[str, Collector] = {}

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            collectors = list(self.collectors.values())
        for collector in collectors:
            yield from collector.collect()

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check for duplicates: the attached collectors are keyed by name


class Metrics:
    """The metric families of one App and the registry they live in."""

    def __init__(self) -> None:
        """Create the registry and the families (labelled: no value exists until a label set is first used)."""
        self.registry = CollectorRegistry()
        self.job_events = Counter(
            "learnagg_job_events",
            "Events counted by a stream job, by reference counter name (committed batches only).",
            ["job", "counter"],
            registry=self.registry,
        )
        self.job_batch_seconds = Histogram(
            "learnagg_job_batch_seconds",
            "Time to handle and commit one batch of a stream job.",
            ["job"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.job_up = Gauge(
            "learnagg_job_up",
            "1 while the stream job's loop is running in a process, else 0.",
            ["job"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.http_requests = Counter(
            "learnagg_http_requests",
            "HTTP requests answered, by route template and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "learnagg_http_request_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self._scrape = _ScrapeTime()
        self.registry.register(self._scrape)
        self._exposed: CollectorRegistry | None = None
        self._exposed_lock = threading.Lock()

    def on_scrape(self, key: str, collector: Collector) -> None:
        """Run ``collector`` each time the metrics are read; a second one with the same ``key`` replaces it."""
        with self._scrape._lock:
            self._scrape.collectors[key] = collector

    def exposed(self) -> CollectorRegistry:
        """The registry to serve: this App's own, or in multi-process mode the sum over all processes."""
        if multiprocess_dir() is None:
            return self.registry
        with self._exposed_lock:
            if self._exposed is None:
                registry = CollectorRegistry()
                MultiProcessCollector(registry)
                registry.register(self._scrape)
                self._exposed = registry
            return self._exposed

    def render(self) -> bytes:
        """The Prometheus text exposition of :meth:`exposed`."""
        return generate_latest(self.exposed())
