"""The Redis Streams bus behind the event-log port (docs/scale-out.md "The Redis Streams bus").

One stream per (topic, partition), named ``<topic>:<p>``, holding entries ``{"key", "payload"}``. Partition counts
and consumer positions stay in the store (``bus_topic``, ``consumer_offset``), so a job's position moves in the
job's own transaction. A position is the stream id of the last handled entry, encoded as one integer
(``ms << 20 | seq``). Every command names a single stream, so the bus works key by key (no multi-key commands).
Streams are trimmed (XTRIM MINID) below the lowest committed position of every job reading them, never above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from learnagg.adapters.bus.log import DatabaseLog, LogEvent
from learnagg.adapters.store.dialects import Dialect
from learnagg.domain.topics import partition_of
from learnagg.errors import ConfigurationError

if TYPE_CHECKING:
    import redis

SEQ_BITS = 20  # the sequence part of a stream id within one millisecond
LAG_CHUNK = 10_000  # entries read per XRANGE when counting a lag


def encode_id(stream_id: str) -> int:
    """``"<ms>-<seq>"`` as one integer that sorts like the stream id."""
    ms, _, seq = stream_id.partition("-")
    return (int(ms) << SEQ_BITS) | int(seq or 0)


def decode_id(position: int) -> str:
    """The stream id an encoded position stands for (``0-0`` for no position)."""
    return f"{position >> SEQ_BITS}-{position & ((1 << SEQ_BITS) - 1)}"


def stream_name(topic: str, partition: int) -> str:
    """The stream of one partition of a topic."""
    return f"{topic}:{partition}"


class RedisStreamsLog(DatabaseLog):
    """Events in Redis streams; partition counts and positions in the store (inherited from the embedded log).

    ``readers`` maps a topic to the jobs that consume it: only those topics are trimmed, and only below the
    lowest committed position among all of them (a reader without a position keeps the whole stream).
    """

    def __init__(self, dialect: Dialect, url: str, *, readers: Mapping[str, Iterable[str]] | None = None) -> None:
        """Connect lazily to ``url`` (``redis://host:port/db``)."""
        super().__init__(dialect)
        try:
            import redis
        except ImportError:
            message = "LEARNAGG_BUS_URL needs the package redis: pip install 'learnagg[redis]'"
            raise ConfigurationError(message) from None
        self.url = url
        self.client: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
        self.readers = {topic: sorted(set(jobs)) for topic, jobs in (readers or {}).items()}

    def append(self, conn: Connection, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
        """XADD each event to its partition's stream, in order (the caller's transaction is not involved)."""
        if not events:
            return
        count = self.partitions(conn, topic)
        pipe = self.client.pipeline(transaction=False)
        for key, payload in events:
            pipe.xadd(stream_name(topic, partition_of(key, payload, count)), {"key": key or "", "payload": payload})
        pipe.execute()

    def _range(self, topic: str, partition: int, after: int, limit: int | None) -> list[LogEvent]:
        entries: Any = self.client.xrange(stream_name(topic, partition), min=f"({decode_id(after)}", count=limit)
        out = []
        for stream_id, fields in entries:
            seq = encode_id(stream_id)
            key = fields.get("key") or None
            out.append(LogEvent(seq, topic, key, fields.get("payload", ""), seq >> SEQ_BITS, partition))
        return out

    def fetch(self, conn: Connection, consumer: str, topic: str, limit: int, partition: int = 0) -> list[LogEvent]:
        """Entries of the partition's stream after the committed position (the position row stays locked)."""
        after = self.offset(conn, consumer, topic, partition=partition, lock=True)
        return self._range(topic, partition, after, limit)

    def read(
        self,
        conn: Connection,
        topic: str,
        *,
        after: int = 0,
        limit: int | None = None,
        partition: int | None = None,
    ) -> list[LogEvent]:
        """Entries of a topic (or one partition) after ``after``, in stream-id order (inspection, tests)."""
        parts = [partition] if partition is not None else range(self.partitions(conn, topic, fix=False))
        events = sorted((e for p in parts for e in self._range(topic, p, after, limit)), key=lambda e: e.seq)
        return events[:limit] if limit is not None else events

    def lags(self, conn: Connection, consumer: str, topic: str) -> dict[int, int]:
        """Per partition: the entries after the consumer's position."""
        out: dict[int, int] = {}
        for partition in range(self.partitions(conn, topic, fix=False)):
            after = self.offset(conn, consumer, topic, partition=partition)
            count = 0
            while True:
                chunk = self._range(topic, partition, after, LAG_CHUNK)
                count += len(chunk)
                if len(chunk) < LAG_CHUNK:
                    break
                after = chunk[-1].seq
            out[partition] = count
        return out

    def trim(self, conn: Connection) -> int:
        """Trim every read stream below the lowest committed position of its readers; return entries removed."""
        removed = 0
        for topic, jobs in self.readers.items():
            if not jobs:
                continue
            for partition in range(self.partitions(conn, topic, fix=False)):
                lowest = min(self.offset(conn, job, topic, partition=partition) for job in jobs)
                if lowest > 0:
                    removed += int(
                        self.client.xtrim(stream_name(topic, partition), minid=decode_id(lowest), approximate=False)
                    )
        return removed

    def ping(self) -> bool:
        """Whether the Redis server answers."""
        return bool(self.client.ping())

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
