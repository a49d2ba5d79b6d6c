"""Exactly-once delivery around one job's batches: skip applied `mid`s, emit through the outbox, relay after commit.

See docs/scale-out.md "The outbox". Everything a batch emits is written to the outbox in the batch's transaction,
together with the `mid`s it applied and its new offset; the relay publishes the outbox after commit. A crash
between the commit and the relay leaves the rows in the outbox, and the next relay run (this worker's or
another's, at start and then every third of a lease period) publishes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from learnagg.adapters.bus.log import EventLog
from learnagg.adapters.bus.outbox import Outbox, OutboxLog
from learnagg.adapters.store.store import Store
from learnagg.domain.clock import Clock
from learnagg.errors import first_line
from learnagg.services import publishing
from learnagg.streams.handler import Incoming

log = logging.getLogger(__name__)

PRUNE_EVERY = 60.0  # seconds between two prunes of a job's applied mids


def mid_of(raw: Any) -> str | None:
    """The event's ``mid`` when it has a non-empty text one."""
    mid = raw.get("mid") if isinstance(raw, dict) else None
    return mid if isinstance(mid, str) and mid else None


class Delivery:
    """The outbox side of one job consumer."""

    def __init__(
        self,
        *,
        store: Store,
        log_: EventLog,
        consumer: str,
        clock: Clock,
        emitter: OutboxLog | None = None,
        applied_mid_ttl_seconds: float = 86_400,
        relay_every: float = 3.0,
    ) -> None:
        """Bind the job; ``emitter`` is the outbox log its handler was given (one is made when None)."""
        self.store = store
        self.consumer = consumer
        self.clock = clock
        self.emitter = emitter or OutboxLog(log_, Outbox(store.dialect))
        self.bus = self.emitter.log
        self.outbox = self.emitter.outbox
        self.ttl_ms = int(applied_mid_ttl_seconds * 1000)
        self.relay_every = relay_every
        self._relay_due = 0.0  # time.monotonic() of the next relay of leftovers; 0: at the first round
        self._prune_due = 0.0

    def begin(self, partition: int) -> None:
        """What is emitted from now on comes from this job's batch of ``partition``."""
        self.emitter.source(self.consumer, partition)

    def emit(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Write events (failed envelopes) to the outbox in the batch's transaction."""
        self.emitter.append(conn, topic, events, now)

    def skip_applied(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> tuple[list[Incoming[Any]], int]:
        """The messages whose ``mid`` was not applied yet (nor earlier in the batch), and how many were skipped."""
        mids = [mid_of(item.raw) for item in batch]
        seen = self.outbox.applied(conn, self.consumer, (m for m in mids if m is not None))
        kept: list[Incoming[Any]] = []
        for item, mid in zip(batch, mids, strict=True):
            if mid is not None:
                if mid in seen:
                    continue
                seen.add(mid)
            kept.append(item)
        return kept, len(batch) - len(kept)

    def record(self, conn: Connection, applied: Iterable[Incoming[Any]], now: int) -> None:
        """Remember the ``mid``s of the messages the batch applied; forget old ones now and then."""
        self.outbox.record(conn, self.consumer, (m for m in (mid_of(i.raw) for i in applied) if m is not None), now)
        if time.monotonic() >= self._prune_due:
            self.outbox.forget(conn, self.consumer, now - self.ttl_ms)
            self._prune_due = time.monotonic() + PRUNE_EVERY

    def relay(self) -> int:
        """Publish every committed outbox row, any producer's (the relay API requests run after their commit)."""
        return publishing.relay(self.store, self.bus, self.clock, self.outbox)

    def after_commit(self) -> int:
        """Relay right after a batch that emitted something; a failure is logged and left to the next run."""
        if not self.emitter.added:
            return 0
        self.emitter.added = 0
        return self._relay_logged(soon=True)

    def relay_if_due(self) -> int:
        """Relay rows left by a crash between a commit and its relay (any job's), at most every ``relay_every``."""
        if time.monotonic() < self._relay_due:
            return 0
        self._relay_due = time.monotonic() + self.relay_every
        self.trim()
        try:
            with self.store.read() as conn:
                if not self.outbox.has_pending(conn):
                    return 0
        except Exception as exc:
            log.warning("%s: could not read the outbox, retried later: %s", self.consumer, first_line(exc))
            return 0
        return self._relay_logged()

    def trim(self) -> int:
        """On a bus that keeps its own entries (Redis Streams), drop those every reading job has committed past."""
        trim = getattr(self.bus, "trim", None)
        if trim is None:
            return 0
        try:
            with self.store.read() as conn:
                return int(trim(conn))
        except Exception as exc:
            log.warning("%s: could not trim the bus, retried later: %s", self.consumer, first_line(exc))
            return 0

    def _relay_logged(self, *, soon: bool = False) -> int:
        try:
            return self.relay()
        except Exception as exc:  # committed already: the rows wait in the outbox for the next relay run
            log.warning("%s: outbox relay failed, retried later: %s", self.consumer, first_line(exc))
            if soon:  # a failure right after a commit: try again at the next round, then every ``relay_every``
                self._relay_due = 0.0
            return 0
