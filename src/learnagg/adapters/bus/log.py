"""The event-log port and its database implementation (docs/reference/data-model.md#reports-and-archival): partitioned
topics, offsets, consumer groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, func, insert, select, update

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import bus_topic, consumer_offset, event_log
from learnagg.domain.topics import partition_of
from learnagg.errors import LearnaggError

DEFAULT_TOPIC = "*"  # the `bus_topic` row holding the partition count of topics not used yet


class LeaseLost(LearnaggError):
    """The worker no longer holds the lease of the (job, partition) it tried to commit: the batch is rolled back."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One stored event: its position in the log and its payload as received (JSON text)."""

    seq: int
    topic: str
    key: str | None
    payload: str
    created_on: int
    partition: int = 0


class EventLog(Protocol):
    """What producers and the consumer loop need from a log.

    The database log does everything on the caller's connection, so a job's writes, its output events and its
    offset commit share one transaction (exactly-once effects). A log outside the database (Redis Streams)
    would ignore ``conn`` and give at-least-once delivery; the handlers are idempotent for that case.
    """

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Append (key, payload) pairs to a topic, in order."""
        ...

    def partitions(self, conn: Connection, topic: str) -> int:
        """The topic's partition count (fixed at its first use)."""
        ...

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int, partition: int = 0) -> list[LogEvent]:
        """The next events of a partition after the consumer's position; locks the position until the end."""
        ...

    def commit(
        self,
        conn: Connection,
        consumer: str,
        topic: str,
        seq: int,
        partition: int = 0,
        *,
        owner: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Move the consumer's position in a partition to ``seq``; with ``owner``, only while it holds the lease."""
        ...


class DatabaseLog:
    """The embedded log: `event_log` rows plus `consumer_offset` rows, in the store's own database.

    One seq sequence serves every topic and partition, so a position is a seq in every partition; events of one
    partition are read in seq order, which is commit order (the topic's producer lock).
    """

    def __init__(self, dialect: Dialect) -> None:
        """Use the store's dialect for topic locks and row locks."""
        self.dialect = dialect
        self._partitions: dict[str, int] = {}

    def partitions(self, conn: Connection, topic: str, *, fix: bool = True) -> int:
        """The topic's partition count: fixed at its first use from the stored default (1 when none is stored).

        ``fix=False`` (read-only callers) answers the count the topic would get without storing it.
        """
        known = self._partitions.get(topic)
        if known is not None:
            return known
        stmt = select(bus_topic.c.partitions).where(bus_topic.c.topic == topic)
        count = conn.execute(stmt).scalar_one_or_none()
        if count is None:
            default = select(bus_topic.c.partitions).where(bus_topic.c.topic == DEFAULT_TOPIC)
            chosen = conn.execute(default).scalar_one_or_none() or 1
            if not fix:
                return int(chosen)
            conn.execute(self.dialect.upsert(bus_topic), {"topic": topic, "partitions": chosen})
            count = conn.execute(stmt).scalar_one()
        self._partitions[topic] = count
        return int(count)

    def store_default_partitions(self, conn: Connection, partitions: int) -> int:
        """Store the partition count of topics not used yet unless one is stored; return the stored count."""
        conn.execute(self.dialect.upsert(bus_topic), {"topic": DEFAULT_TOPIC, "partitions": partitions})
        stmt = select(bus_topic.c.partitions).where(bus_topic.c.topic == DEFAULT_TOPIC)
        return int(conn.execute(stmt).scalar_one())

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Insert the events under the topic's producer lock so that seq order is commit order."""
        if not events:
            return
        count = self.partitions(conn, topic)
        self.dialect.lock_topic(conn, topic)
        conn.execute(
            insert(event_log),
            [
                {
                    "topic": topic,
                    "key": key,
                    "payload": payload,
                    "created_on": now,
                    "partition": partition_of(key, payload, count),
                }
                for key, payload in events
            ],
        )

    def offset(self, conn: Connection, consumer: str, topic: str, *, partition: int = 0, lock: bool = False) -> int:
        """The consumer's committed position in a partition (0 when it has none), optionally locked for update."""
        if lock:
            # Create the row first so there is something to lock; concurrent creators do nothing twice.
            conn.execute(
                self.dialect.upsert(consumer_offset),
                {"consumer": consumer, "topic": topic, "partition": partition, "seq": 0},
            )
        stmt = select(consumer_offset.c.seq).where(
            consumer_offset.c.consumer == consumer,
            consumer_offset.c.topic == topic,
            consumer_offset.c.partition == partition,
        )
        if lock:
            stmt = self.dialect.lock_for_update(stmt)
        return conn.execute(stmt).scalar_one_or_none() or 0

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int, partition: int = 0) -> list[LogEvent]:
        """Events of a partition after the committed position, in seq order; one consumer of a group at a time."""
        after = self.offset(conn, consumer, topic, partition=partition, lock=True)
        return self.read(conn, topic, after=after, limit=limit, partition=partition)

    def read(
        self,
        conn: Connection,
        topic: str,
        *,
        after: int = 0,
        limit: int | None = None,
        partition: int | None = None,
    ) -> list[LogEvent]:
        """Events of a topic (or of one partition) with seq > ``after`` (no offsets involved: inspection, tests)."""
        stmt = (
            select(
                event_log.c.seq,
                event_log.c.topic,
                event_log.c.key,
                event_log.c.payload,
                event_log.c.created_on,
                event_log.c.partition,
            )
            .where(event_log.c.topic == topic, event_log.c.seq > after)
            .order_by(event_log.c.seq)
        )
        if partition is not None:
            stmt = stmt.where(event_log.c.partition == partition)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [LogEvent(*row) for row in conn.execute(stmt)]

    def commit(
        self,
        conn: Connection,
        consumer: str,
        topic: str,
        seq: int,
        partition: int = 0,
        *,
        owner: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Store the new position (the row exists: `fetch` created it).

        With ``owner`` the update happens only while that worker holds the partition's lease at ``now_ms``;
        otherwise :class:`LeaseLost` is raised and the caller's transaction must roll back.
        """
        stmt = (
            update(consumer_offset)
            .where(
                consumer_offset.c.consumer == consumer,
                consumer_offset.c.topic == topic,
                consumer_offset.c.partition == partition,
            )
            .values(seq=seq)
        )
        if owner is not None:
            stmt = stmt.where(consumer_offset.c.owner == owner, consumer_offset.c.lease_until >= now_ms)
        if conn.execute(stmt).rowcount != 1 and owner is not None:
            raise LeaseLost(f"{consumer}: lease of {topic} partition {partition} lost by {owner}")

    def lags(self, conn: Connection, consumer: str, topic: str) -> dict[int, int]:
        """Per partition of the topic: how many of its events the consumer has not handled yet."""
        out: dict[int, int] = {}
        for partition in range(self.partitions(conn, topic, fix=False)):
            after = self.offset(conn, consumer, topic, partition=partition)
            stmt = (
                select(func.count())
                .select_from(event_log)
                .where(event_log.c.topic == topic, event_log.c.partition == partition, event_log.c.seq > after)
            )
            out[partition] = conn.execute(stmt).scalar_one()
        return out

    def lag(self, conn: Connection, consumer: str, topic: str) -> int:
        """How many events of the topic (all partitions) the consumer has not handled yet."""
        return sum(self.lags(conn, consumer, topic).values())
