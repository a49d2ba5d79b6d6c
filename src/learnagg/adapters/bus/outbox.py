"""The outbox of emitted events and the applied `mid`s of each job (docs/scale-out.md "The outbox").

A job's batch writes the events it emits (failed envelopes, certificate and generate-certificate requests) to the
`outbox` table in its own transaction; after commit the relay moves them to the bus with their payload (and so
their `mid`) unchanged. On the embedded log the relay inserts them into `event_log` and deletes them from the
outbox in one transaction, so each is published exactly once whatever crashes. `applied_mid` remembers the
`mid`s a job applied, written in the same transaction as its offset, so that a repeated one is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import groupby

from sqlalchemy import Connection, and_, delete, func, insert, select

from learnagg.adapters.bus.log import EventLog, LogEvent
from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import applied_mid, outbox

RELAY_LOCK = "<outbox relay>"  # serialises relays (PostgreSQL advisory lock; SQLite has one writer anyway)
RELAY_CHUNK = 5000  # outbox rows moved per relay transaction


class Outbox:
    """The `outbox` and `applied_mid` tables of one store."""

    def __init__(self, dialect: Dialect) -> None:
        """Use the store's dialect for the relay lock and the upserts."""
        self.dialect = dialect

    def add(
        self,
        conn: Connection,
        topic: str,
        events: Sequence[tuple[str | None, str]],
        now: int,
        *,
        consumer: str,
        partition: int,
    ) -> int:
        """Write (key, payload) pairs emitted by ``consumer``'s batch of ``partition``; return how many."""
        if not events:
            return 0
        rows = [
            {"topic": topic, "key": key, "payload": payload, "consumer": consumer, "partition": partition}
            for key, payload in events
        ]
        conn.execute(insert(outbox), [{**row, "created_on": now} for row in rows])
        return len(rows)

    def relay(self, conn: Connection, log: EventLog, now: int, limit: int = RELAY_CHUNK) -> int:
        """Move up to ``limit`` committed outbox rows to ``log`` in id order; return how many were moved.

        The caller commits: on the embedded log the append and the delete then become visible together.
        """
        self.dialect.lock_topic(conn, RELAY_LOCK)
        stmt = select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload).order_by(outbox.c.id).limit(limit)
        rows = conn.execute(stmt).all()
        if not rows:
            return 0
        # Consecutive rows of one topic go in one append, so each topic keeps the outbox order.
        for topic, group in groupby(rows, key=lambda r: r.topic):
            log.append(conn, topic, [(r.key, r.payload) for r in group], now)
        conn.execute(delete(outbox).where(outbox.c.id.in_([r.id for r in rows])))
        return len(rows)

    def has_pending(self, conn: Connection) -> bool:
        """Whether any committed row waits for the relay."""
        return conn.execute(select(outbox.c.id).limit(1)).first() is not None

    def pending(self, conn: Connection) -> Counter[tuple[str, int]]:
        """Rows waiting for the relay, per (job, partition) that emitted them."""
        stmt = select(outbox.c.consumer, outbox.c.partition, func.count()).group_by(
            outbox.c.consumer, outbox.c.partition
        )
        return Counter({(consumer, partition): count for consumer, partition, count in conn.execute(stmt)})

    def applied(self, conn: Connection, consumer: str, mids: Iterable[str]) -> set[str]:
        """Those of ``mids`` that ``consumer`` already applied (and still remembers)."""
        wanted = sorted(set(mids))
        found: set[str] = set()
        for start in range(0, len(wanted), 1000):  # bounded IN lists
            chunk = wanted[start : start + 1000]
            stmt = select(applied_mid.c.mid).where(applied_mid.c.consumer == consumer, applied_mid.c.mid.in_(chunk))
            found.update(conn.execute(stmt).scalars())
        return found

    def record(self, conn: Connection, consumer: str, mids: Iterable[str], now: int) -> None:
        """Remember that ``consumer`` applied ``mids`` (in the transaction that moves its offset)."""
        rows = [{"consumer": consumer, "mid": mid, "applied_on": now} for mid in dict.fromkeys(mids)]
        if rows:
            conn.execute(self.dialect.upsert(applied_mid), rows)

    def forget(self, conn: Connection, consumer: str, before: int) -> int:
        """Drop ``consumer``'s applied `mid`s recorded before ``before`` (epoch ms); return how many."""
        stmt = delete(applied_mid).where(and_(applied_mid.c.consumer == consumer, applied_mid.c.applied_on < before))
        return int(conn.execute(stmt).rowcount or 0)


class OutboxLog:
    """An :class:`EventLog` whose appends go to the outbox, tagged with the batch being handled.

    Handlers are given this log instead of the bus: what they emit is published only by the relay, after
    their transaction commits. Reads and offsets go to the real log.
    """

    def __init__(self, log: EventLog, outbox_: Outbox) -> None:
        """Wrap the bus ``log``; ``outbox_`` receives the appends."""
        self.log = log
        self.outbox = outbox_
        self.consumer = ""
        self.partition = 0
        self.added = 0  # rows written since the last relay

    def source(self, consumer: str, partition: int) -> None:
        """Tag what is appended from now on as emitted by ``consumer``'s batch of ``partition``."""
        self.consumer, self.partition = consumer, partition

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """Write the events to the outbox in the caller's transaction."""
        self.added += self.outbox.add(conn, topic, events, now, consumer=self.consumer, partition=self.partition)

    def partitions(self, conn: Connection, topic: str) -> int:
        """The real log's partition count of ``topic``."""
        return self.log.partitions(conn, topic)

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int, partition: int = 0) -> list[LogEvent]:
        """Read from the real log."""
        return self.log.fetch(conn, consumer, topic, limit, partition)

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
        """Move the position in the real log."""
        self.log.commit(conn, consumer, topic, seq, partition, owner=owner, now_ms=now_ms)
