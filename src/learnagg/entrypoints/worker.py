"""The consumer loop: fetch a batch, parse, route bad events to the failed topic, handle, commit the offset."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from learnagg.adapters.bus.log import EventLog, LogEvent
from learnagg.adapters.store.store import Store
from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.clock import Clock
from learnagg.domain.messages import failed_event
from learnagg.domain.topics import Topics
from learnagg.errors import first_line
from learnagg.services.jobs import BatchResult, Handler, Incoming, JobSpec

log = logging.getLogger(__name__)

NOT_AN_OBJECT = "event is not a JSON object"


class LoopService:
    """A loop with ``run_once`` (one unit of work, returns how much it did), ``start`` and ``stop``."""

    poll_interval: float = 0.5

    def __init__(self) -> None:
        """Create the stop flag."""
        self._stop = threading.Event()

    def run_once(self) -> int:
        """Do one unit of work; return the number of items handled (0 means idle)."""
        raise NotImplementedError

    def start(self, loops: int | None = None, *, until_idle: bool = False) -> int:
        """Run ``run_once`` until stopped, ``loops`` times, or (``until_idle``) until it finds no work.

        Returns:
            The total number of items handled.
        """
        total = 0
        done = 0
        while not self._stop.is_set() and (loops is None or done < loops):
            handled = self.run_once()
            total += handled
            done += 1
            if handled == 0:
                if until_idle:
                    break
                self._stop.wait(self.poll_interval)
        return total

    def stop(self) -> None:
        """Ask the loop to finish after the current unit of work."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called."""
        return self._stop.is_set()


class JobConsumer(LoopService):
    """Consumes one topic for one job; each batch and its offset commit form one transaction."""

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
        after_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        """Bind the job to its topics, store and log; ``after_commit`` runs after each committed batch."""
        super().__init__()
        self.spec = spec
        self.handler = handler
        self.store = store
        self.log = log_
        self.clock = clock
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.after_commit = after_commit
        self.input_topic = topics.name(spec.input_suffix)
        self.failed_topic = topics.name(spec.failed_suffix)
        self.consumer = spec.name
        self.counters: Counter[str] = Counter()

    def run_once(self) -> int:
        """Handle one batch; an internal error rolls everything back and leaves the offset where it was."""
        # A batch keeps thousands of decoded objects alive; the cyclic collector would rescan them over and over
        # (a third of the run time when measured). They are freed by reference counting when the batch ends.
        gc.disable()
        try:
            with self.store.write() as conn:
                events = self.log.fetch(conn, self.consumer, self.input_topic, self.batch_size)
                if not events:
                    return 0
                parsed, failures = self._parse(events)
                result = self.handler.handle(conn, parsed)
                failures.extend((i.raw_text, i.raw, reason) for i, reason in result.failures)
                now = self.clock()
                self.log.append(
                    conn,
                    self.failed_topic,
                    [
                        (None, _dumps(failed_event(text, raw, reason, self.spec.src, now)))
                        for text, raw, reason in failures
                    ],
                    now,
                )
                self.log.commit(conn, self.consumer, self.input_topic, events[-1].seq)
        except SQLAlchemyError as exc:
            # SPEC §2.5: an internal error does not advance the offset; the batch is retried as a whole.
            log.warning("%s: batch rolled back, will retry: %s", self.spec.name, first_line(exc))
            self.counters["retry"] += 1
            self._stop.wait(self.retry_delay)
            raise
        finally:
            gc.enable()
        # Count only what was committed, so a retried batch is never counted twice.
        self.counters.update(result.counters)
        if self.after_commit is not None:
            self.after_commit(result)
        self.counters["failed"] += len(failures)
        return len(events)

    def _parse(self, events: Sequence[LogEvent]) -> tuple[list[Incoming[Any]], list[tuple[str, Any, str]]]:
        parsed: list[Incoming[Any]] = []
        failures: list[tuple[str, Any, str]] = []
        for ev in events:
            try:
                raw = orjson.loads(ev.payload)
            except orjson.JSONDecodeError:
                failures.append((ev.payload, None, NOT_AN_OBJECT))
                continue
            try:
                message = self.spec.parse(raw)
            except InvalidEvent as exc:
                failures.append((ev.payload, raw, exc.reason))
                continue
            parsed.append(Incoming(ev.payload, raw, message))
        return parsed, failures

    def reference_counters(self) -> dict[str, int]:
        """The counters under the reference job's metric names."""
        names = self.spec.counter_names
        return {names.get(k, k): v for k, v in sorted(self.counters.items())}


class Worker(LoopService):
    """Drives several job consumers round-robin in one thread; stops cleanly on SIGTERM/SIGINT."""

    def __init__(
        self, consumers: Sequence[JobConsumer], poll_interval: float = 0.5, max_retries: int | None = None
    ) -> None:
        """Take the consumers; ``max_retries`` bounds consecutive internal errors (None: retry forever)."""
        super().__init__()
        self.consumers = list(consumers)
        self.poll_interval = poll_interval
        self.max_retries = max_retries
        self._errors = 0

    def run_once(self) -> int:
        """One round: one batch from each consumer."""
        handled = 0
        for consumer in self.consumers:
            if self.stopping:
                break
            try:
                handled += consumer.run_once()
                self._errors = 0
            except SQLAlchemyError:
                self._errors += 1
                if self.max_retries is not None and self._errors > self.max_retries:
                    raise
                handled += 1  # not idle: the batch is still waiting to be retried
        return handled

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a clean stop (the current transaction commits or rolls back first)."""

        def _handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
