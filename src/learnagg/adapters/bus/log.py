"""The event-log port and its database implementation (SPEC §2.5): topics, offsets, consumer groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, func, insert, select, update

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import consumer_offset, event_log


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One stored event: its position in the log and its payload as received (JSON text)."""

    seq: int
    topic: str
    key: str | None
    payload: str
    created_on: int


class EventLog(Protocol):
    """What producers and the consumer loop need from a log.

    The database log does everything on the caller's connection, so a job's writes, its output events and its
    offset commit share one transaction (exactly-once effects). A log outside the database (Redis Streams)
    would ignore ``conn`` and give at-least-once delivery; the handlers are idempotent for that case.
    """

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Append (key, payload) pairs to a topic, in order."""
        ...

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int) -> list[LogEvent]:
        """The next events after the consumer's committed offset; locks the offset until the transaction ends."""
        ...

    def commit(self, conn: Connection, consumer: str, topic: str, seq: int) -> None:
        """Move the consumer's offset to ``seq`` (the last event handled)."""
        ...


class DatabaseLog:
    """The embedded log: `event_log` rows plus `consumer_offset` rows, in the store's own database."""

    def __init__(self, dialect: Dialect) -> None:
        """Use the store's dialect for topic locks and row locks."""
        self.dialect = dialect

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Insert the events under the topic's producer lock so that seq order is commit order."""
        if not events:
            return
        self.dialect.lock_topic(conn, topic)
        conn.execute(
            insert(event_log),
            [{"topic": topic, "key": key, "payload": payload, "created_on": now} for key, payload in events],
        )

    def offset(self, conn: Connection, consumer: str, topic: str, *, lock: bool = False) -> int:
        """The consumer's committed offset (0 when it has none), optionally locked for update."""
        if lock:
            # Create the row first so there is something to lock; concurrent creators do nothing twice.
            conn.execute(self.dialect.upsert(consumer_offset), {"consumer": consumer, "topic": topic, "seq": 0})
        stmt = select(consumer_offset.c.seq).where(
            consumer_offset.c.consumer == consumer, consumer_offset.c.topic == topic
        )
        if lock:
            stmt = self.dialect.lock_for_update(stmt)
        return conn.execute(stmt).scalar_one_or_none() or 0

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int) -> list[LogEvent]:
        """Events after the committed offset, in seq order; one consumer of a group at a time."""
        after = self.offset(conn, consumer, topic, lock=True)
        return self.read(conn, topic, after=after, limit=limit)

    def read(self, conn: Connection, topic: str, *, after: int = 0, limit: int | None = None) -> list[LogEvent]:
        """Events of a topic with seq > ``after`` (no offsets involved: inspection, tests)."""
        stmt = (
            select(
                event_log.c.seq,
                event_log.c.topic,
                event_log.c.key,
                event_log.c.payload,
                event_log.c.created_on,
            )
            .where(event_log.c.topic == topic, event_log.c.seq > after)
            .order_by(event_log.c.seq)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return [LogEvent(*row) for row in conn.execute(stmt)]

    def commit(self, conn: Connection, consumer: str, topic: str, seq: int) -> None:
        """Store the new offset (the row exists: `fetch` created it)."""
        conn.execute(
            update(consumer_offset)
            .where(consumer_offset.c.consumer == consumer, consumer_offset.c.topic == topic)
            .values(seq=seq)
        )

    def lag(self, conn: Connection, consumer: str, topic: str) -> int:
        """How many events of the topic the consumer has not handled yet."""
        after = self.offset(conn, consumer, topic)
        stmt = select(func.count()).select_from(event_log).where(event_log.c.topic == topic, event_log.c.seq > after)
        return conn.execute(stmt).scalar_one()
