"""The consumer loop: fetch a batch, parse, handle (isolating poison events), route failures, commit the offset."""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from sqlalchemy import Connection

from learnagg.adapters.bus.leases import worker_id
from learnagg.adapters.bus.log import EventLog, LeaseLost
from learnagg.adapters.bus.outbox import OutboxLog
from learnagg.adapters.metrics import Metrics
from learnagg.adapters.store.store import Store
from learnagg.domain.clock import Clock
from learnagg.domain.topics import Topics
from learnagg.errors import LearnaggError, first_line
from learnagg.logs import job_context
from learnagg.streams import phases
from learnagg.streams.delivery import Delivery
from learnagg.streams.failures import envelope, parse_batch
from learnagg.streams.handler import BatchResult, Handler, Incoming, JobSpec
from learnagg.streams.loop import LoopService
from learnagg.streams.ownership import PartitionOwnership
from learnagg.streams.retry import backoff_delay, describe, internal_error_reason, is_transient

log = logging.getLogger(__name__)


class JobFailed(LearnaggError):
    """A run that must end (``until_idle``) gave up on a batch that kept failing."""


class JobConsumer(LoopService):
    """Consumes one topic for one job; each batch and its offset commit form one transaction.

    A batch whose handling raises a non-transient error is split in halves, each handled in its own savepoint,
    until the offending events are alone: those go to the failed topic with the error as reason, the others are
    applied exactly as without them (docs/event-log.md "Poison events and retries"). A transient error, or any
    error outside the handler, rolls the whole batch back and leaves the offset where it was: ``run_once`` raises it
    and ``retry_at`` tells when to try again (exponential backoff with jitter).
    """

    def __init__(
        self,
        *,
        spec: JobSpec,
        handler: Handler[Any],
        store: Store,
        log_: EventLog,
        topics: Topics,
        clock: Clock,
        batch_size: int,
        poll_interval: float = 0.5,
        retry_delay: float = 2.0,
        retry_max_delay: float = 60.0,
        after_commit: Callable[[BatchResult], None] | None = None,
        pause_gc: bool = True,
        metrics: Metrics | None = None,
        owner: str | None = None,
        lease_seconds: float = 10.0,
        partitions: Sequence[int] | None = None,
        emitter: OutboxLog | None = None,
        applied_mid_ttl_seconds: float = 86_400,
    ) -> None:
        """Bind the job to its topics, store and log; ``after_commit`` runs after each committed batch.

        ``emitter`` is the outbox log the handler emits through (docs/scale-out.md "The outbox"); failed envelopes
        go through it too, and what it holds is relayed after each commit.

        ``owner`` is this worker's id (``<hostname>:<pid>`` by default), ``lease_seconds`` the lease period of its
        partitions and ``partitions`` the partitions it is pinned to (None: an even share of the live workers').

        ``pause_gc`` pauses the cyclic garbage collector during each batch: right for a worker process of its own,
        wrong inside `serve`, where it would pause it for the HTTP threads too. ``metrics`` (the App's) receives the
        committed counters under their reference names and the batch durations.
        """
        super().__init__()
        self.spec = spec
        self.handler = handler
        self.store = store
        self.log = log_
        self.clock = clock
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self.after_commit = after_commit
        self.pause_gc = pause_gc
        self.metrics = metrics
        self.input_topic = topics.name(spec.input_suffix)
        self.failed_topic = topics.name(spec.failed_suffix)
        self.consumer = spec.name
        self.counters: Counter[str] = Counter()
        # Consecutive failed attempts at the current batch (the offset does not move until one succeeds).
        self.consecutive_failures = 0
        self.retry_at = 0.0  # time.monotonic() before which the batch is not tried again
        self.ownership = PartitionOwnership(
            store=store,
            log_=log_,
            consumer=self.consumer,
            topic=self.input_topic,
            owner=owner or worker_id(),
            lease_seconds=lease_seconds,
            pinned=partitions,
        )
        self.delivery = Delivery(
            store=store,
            log_=log_,
            consumer=self.consumer,
            clock=clock,
            emitter=emitter,
            applied_mid_ttl_seconds=applied_mid_ttl_seconds,
            relay_every=self.ownership.lease_ms / 3000,
        )
        self.drain = False  # set by `Worker.start(until_idle=True)`: wait for partitions held by others
        self._turn = 0

    def run_once(self) -> int:
        """One batch from each partition this worker holds (the records it logs carry the job's name).

        Returns:
            The events handled; while draining, plus the partitions with events that another worker still holds
            (they are taken over once that worker's lease ends).
        """
        with job_context(self.spec.name):
            try:
                owned = list(self.ownership.refresh())
            except Exception as exc:
                self._failed_attempt(exc)
                raise
            handled = self.delivery.relay_if_due()  # what a crash left between a commit and its relay
            if owned:
                self._turn = (self._turn + 1) % len(owned)
            # A batch keeps thousands of decoded objects alive; the cyclic collector would rescan them over and over
            # (a third of the run time when measured). They are freed by reference counting when `_run_batch`
            # returns, before the collector is back on (turned on earlier, it scans each batch once more).
            # Only in a process of its own (`pause_gc`): inside `serve` it would pause the collector for every thread.
            if self.pause_gc:
                gc.disable()
            try:
                for partition in owned[self._turn :] + owned[: self._turn]:
                    handled += self._run_batch(partition)
            finally:
                if self.pause_gc:
                    gc.enable()
            if handled or not self.drain:
                return handled
            waiting = self.ownership.unowned_backlog()
            if waiting:
                time.sleep(min(self.poll_interval, self.ownership.lease_ms / 3000))
            return waiting

    def close(self) -> None:
        """Release this worker's leases (a clean stop); a failure is only logged, the leases then expire."""
        try:
            self.ownership.leave()
        except Exception as exc:
            log.warning("%s: could not release its partitions: %s", self.spec.name, first_line(exc))

    def _run_batch(self, partition: int) -> int:
        """Handle one batch of a partition; an error that is not an event's fault rolls everything back and is raised.

        A commit refused because the lease was taken meanwhile rolls the batch back too; the partition is dropped.
        """
        started = time.perf_counter()
        phases.lap(None)
        try:
            if not self.ownership.holds(partition):
                return 0
            with self.store.write() as conn:
                self.ownership.bound_stall(conn)
                limit = self.ownership.batch_limit(partition, self.batch_size)
                events = self.log.fetch(conn, self.consumer, self.input_topic, limit, partition)
                phases.lap(phases.FETCH)
                if not events:
                    self.consecutive_failures = 0
                    return 0
                parsed, failures, internal = parse_batch(self.spec.parse, events)
                duplicates = 0
                if self.spec.skip_applied_mids:
                    parsed, duplicates = self.delivery.skip_applied(conn, parsed)
                self.delivery.begin(partition)
                phases.lap(phases.OUTBOX)
                results: list[BatchResult] = []
                poisoned: list[tuple[Incoming[Any], str]] = []
                self._handle(conn, parsed, results, poisoned)
                refused = {id(i) for r in results for i, _ in r.failures} | {id(i) for i, _ in poisoned}
                for result in results:
                    failures.extend((i.seq, i.raw_text, i.raw, reason) for i, reason in result.failures)
                internal.extend((i.seq, i.raw_text, i.raw, reason) for i, reason in poisoned)
                failures.extend(internal)
                now = self.clock()
                src, where = self.spec.src, f"{self.consumer}:{partition}"
                envelopes = [(None, envelope(*f, src=src, now=now, where=where)) for f in failures]
                self.delivery.emit(conn, self.failed_topic, envelopes, now)
                if self.spec.skip_applied_mids:
                    self.delivery.record(conn, (i for i in parsed if id(i) not in refused), now)
                self.log.commit(
                    conn,
                    self.consumer,
                    self.input_topic,
                    events[-1].seq,
                    partition,
                    owner=self.ownership.owner,
                    now_ms=self.ownership.now_ms(),
                )
                phases.lap(phases.OUTBOX)
        except LeaseLost as exc:
            log.warning("%s: batch rolled back: %s", self.spec.name, exc)
            self.ownership.lost(partition)
            self.delivery.emitter.added = 0
            return 0
        except Exception as exc:
            self.delivery.emitter.added = 0
            # An internal error does not advance the offset: the batch is retried whole (docs/event-log.md).
            self._failed_attempt(exc)
            raise
        phases.lap(phases.COMMIT)
        self.consecutive_failures = 0
        self.delivery.after_commit()
        phases.lap(phases.OUTBOX)
        # Count only what was committed, so a retried batch is never counted twice.
        merged = BatchResult()
        for result in results:
            merged.counters.update(result.counters)
            merged.changed_users |= result.changed_users
            merged.failures.extend(result.failures)
        committed = Counter(merged.counters)
        committed["failed"] += len(failures)
        if internal:
            committed["poison"] += len(internal)
        if duplicates:
            committed["duplicate"] += duplicates
        self.counters.update(committed)
        self._observe(committed, time.perf_counter() - started)
        if self.after_commit is not None:
            try:
                self.after_commit(merged)
            except Exception as exc:  # the batch is committed: never handle it again for a cache miss
                log.warning("%s: after-commit step failed: %s", self.spec.name, first_line(exc))
        return len(events)

    def _handle(
        self,
        conn: Connection,
        batch: Sequence[Incoming[Any]],
        results: list[BatchResult],
        poisoned: list[tuple[Incoming[Any], str]],
    ) -> None:
        """Handle ``batch`` in a savepoint; on a non-transient error, bisect it to isolate the events that fail.

        Handling the halves in order gives the same result as handling the whole batch (docs/jobs.md), so the
        events that succeed are applied exactly as if the failing ones had never been published.
        """
        try:
            with conn.begin_nested():
                results.append(self.handler.handle(conn, batch))
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(batch) <= 1:
                reason = internal_error_reason(exc)
                log.warning("%s: event isolated and sent to %s: %s", self.spec.name, self.failed_topic, reason)
                poisoned.extend((item, reason) for item in batch)
                return
        middle = len(batch) // 2
        self._handle(conn, batch[:middle], results, poisoned)
        self._handle(conn, batch[middle:], results, poisoned)

    def _failed_attempt(self, exc: Exception) -> None:
        """Count the failure and schedule the retry of the same batch."""
        self.consecutive_failures += 1
        self.counters["retry"] += 1
        self._observe(Counter(retry=1), None)
        delay = backoff_delay(self.consecutive_failures, self.retry_delay, self.retry_max_delay)
        self.retry_at = time.monotonic() + delay
        kind = "transient" if is_transient(exc) else "unexpected"
        log.warning(
            "%s: batch rolled back after a %s error (failure %d in a row), retrying in %.1f s: %s",
            self.spec.name,
            kind,
            self.consecutive_failures,
            delay,
            describe(exc),
        )

    def _observe(self, counters: Counter[str], seconds: float | None) -> None:
        """Add committed counters (reference names) and a batch duration to the metrics, if any."""
        if self.metrics is None:
            return
        names = self.spec.counter_names
        for key, value in counters.items():
            if value:
                self.metrics.job_events.labels(self.spec.name, names.get(key, key)).inc(value)
        if seconds is not None:
            self.metrics.job_batch_seconds.labels(self.spec.name).observe(seconds)

    def set_up(self, up: bool) -> None:
        """Report whether the loop running this job is alive (``learnagg_job_up``).

        Going up also creates every counter of the job at 0, so a counter that has not moved yet is still served.
        """
        if self.metrics is None:
            return
        if up:
            for name in (*self.spec.counter_names.values(), "retry", "poison"):
                self.metrics.job_events.labels(self.spec.name, name)
        self.metrics.job_up.labels(self.spec.name).set(1 if up else 0)

    def reference_counters(self) -> dict[str, int]:
        """The counters under the reference job's metric names."""
        names = self.spec.counter_names
        return {names.get(k, k): v for k, v in sorted(self.counters.items())}


class Worker(LoopService):
    """Drives several job consumers round-robin in one thread; stops cleanly on SIGTERM/SIGINT.

    A consumer whose batch failed waits for its own backoff while the others carry on. A run that must end
    (``start(until_idle=True)``) gives up with :class:`JobFailed` once one consumer's batch has failed more than
    ``max_retries`` times in a row (``max_retries=0``: at the first failure), whatever the other jobs do. A
    long-running worker (``learnagg serve``, ``learnagg worker``) retries for as long as it runs.
    """

    def __init__(
        self, consumers: Sequence[JobConsumer], poll_interval: float = 0.5, max_retries: int | None = None
    ) -> None:
        """Take the consumers; ``max_retries`` bounds consecutive failures of one batch (None: retry forever)."""
        super().__init__()
        self.consumers = list(consumers)
        PartitionOwnership.group([c.ownership for c in self.consumers])  # renewed together
        self.poll_interval = poll_interval
        self.max_retries = max_retries
        self._until_idle = False

    def start(self, loops: int | None = None, *, until_idle: bool = False) -> int:
        """Run rounds as :meth:`LoopService.start`; ``until_idle`` also bounds retries by ``max_retries``.

        Each job is reported up (``learnagg_job_up`` 1) while this loop runs, and down however it ends.
        """
        self._until_idle = until_idle
        for consumer in self.consumers:
            consumer.drain = until_idle
            consumer.set_up(True)
        try:
            return super().start(loops, until_idle=until_idle)
        finally:
            for consumer in self.consumers:
                consumer.close()
                consumer.set_up(False)

    def run_once(self) -> int:
        """One round: one batch from each consumer that is not waiting to retry.

        Returns:
            The events handled, plus one per consumer waiting to retry (a failed batch is work still to do).
        """
        handled = 0
        waiting: list[JobConsumer] = []
        for consumer in self.consumers:
            if self.stopping:
                break
            if consumer.consecutive_failures and consumer.retry_at > time.monotonic():
                waiting.append(consumer)
                continue
            try:
                handled += consumer.run_once()
            except Exception as exc:
                if self._gives_up(consumer):
                    raise JobFailed(
                        f"{consumer.spec.name}: the same batch failed {consumer.consecutive_failures} time(s) in a "
                        f"row, giving up: {describe(exc)}"
                    ) from exc
                waiting.append(consumer)
        if waiting and handled == 0 and not self.stopping:
            # Nothing else to do: sleep until the next retry is due (at most a poll interval, so the other jobs
            # still see new events); stop() ends the wait at once.
            due = min(c.retry_at for c in waiting) - time.monotonic()
            self._stop.wait(max(0.0, min(due, self.poll_interval)))
        return handled + len(waiting)

    def _gives_up(self, consumer: JobConsumer) -> bool:
        return self._until_idle and self.max_retries is not None and consumer.consecutive_failures > self.max_retries

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a clean stop (the current transaction commits or rolls back first)."""

        def _handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
