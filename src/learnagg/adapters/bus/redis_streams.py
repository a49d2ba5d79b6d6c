"""The Redis Streams bus behind the event-log port (docs/scale-out.md "The Redis Streams bus").

One stream per (topic, partition), named ``<topic>:<p>``, holding entries ``{"key", "payload"}``. Partition counts
and consumer positions stay in the store (``bus_topic``, ``consumer_offset``), so a job's position moves in the
job's own transaction. A position is the stream id of the last handled entry, encoded as one integer
(``ms << 20 | seq``). Every command names a single stream, so the bus works key by key (no multi-key commands)
and on a Redis Cluster too (``redis+cluster://host:port[,host:port…]``), where the streams of a topic hash to
different slots. Streams are trimmed (XTRIM MINID) below the lowest committed position of every job reading them,
never above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection

from learnagg.adapters.bus.log import DatabaseLog, LogEvent
from learnagg.adapters.store.dialects import Dialect
from learnagg.domain.topics import partition_of
from learnagg.errors import ConfigurationError

if TYPE_CHECKING:
    import redis
    import redis.cluster

    Client = redis.Redis | redis.cluster.RedisCluster

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


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SCHEMES = ("redis://", "rediss://", *(f"{scheme}://" for scheme in CLUSTER_SCHEMES))


def client_factory(url: str) -> Callable[..., Client]:
    """What connects to ``redis://host:port/db`` (one server) or ``redis+cluster://host:port[,host:port…]``.

    A cluster URL is redis-py's own URL of one node (``RedisCluster.from_url``) with ``+cluster`` in the scheme;
    more seed nodes may follow the first, separated by commas. A cluster has only database 0. A bad URL or a
    missing package is a :class:`ConfigurationError` here; nothing connects until the factory is called.
    """
    try:
        import redis
        import redis.cluster
    except ImportError:
        message = "LEARNAGG_BUS_URL needs the package redis: pip install 'learnagg[redis]'"
        raise ConfigurationError(message) from None
    parts = urlsplit(url)
    plain = CLUSTER_SCHEMES.get(parts.scheme)
    if plain is None:
        return partial(redis.Redis.from_url, url, decode_responses=True)
    credentials, _, hosts = parts.netloc.rpartition("@")
    seeds = [h.strip() for h in hosts.split(",") if h.strip()]
    if not seeds or parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError(f"LEARNAGG_BUS_URL {url!r}: expected {parts.scheme}://host:port[,host:port...]")
    nodes = []
    for seed in seeds:
        host, _, port = seed.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"LEARNAGG_BUS_URL {url!r}: {seed!r} is not host:port")
        nodes.append(redis.cluster.ClusterNode(host, int(port)))
    first = urlunsplit((plain, f"{credentials}@{seeds[0]}" if credentials else seeds[0], "", parts.query, ""))
    return partial(redis.cluster.RedisCluster, url=first, startup_nodes=nodes[1:], decode_responses=True)


def connect(url: str, **options: Any) -> Client:
    """A client for ``url`` (see :func:`client_factory`); ``options`` go to redis-py (timeouts)."""
    return client_factory(url)(**options)


class RedisStreamsLog(DatabaseLog):
    """Events in Redis streams; partition counts and positions in the store (inherited from the embedded log).

    ``readers`` maps a topic to the jobs that consume it: only those topics are trimmed, and only below the
    lowest committed position among all of them (a reader without a position keeps the whole stream).
    """

    transactional = False  # an append is not part of the caller's transaction: producers go through the outbox

    def __init__(self, dialect: Dialect, url: str, *, readers: Mapping[str, Iterable[str]] | None = None) -> None:
        """Connect on first use to ``url`` (``redis://host:port/db`` or ``redis+cluster://host:port[,host:port…]``)."""
        super().__init__(dialect)
        self.url = url
        self._connect = client_factory(url)  # a bad URL or a missing package fails now, an unreachable server later
        self._client: Client | None = None
        self._lock = threading.Lock()
        self.readers = {topic: sorted(set(jobs)) for topic, jobs in (readers or {}).items()}

    @property
    def client(self) -> Client:
        """The client, connected at first use (a cluster client asks a seed node for the slot map then)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

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

    def end(self, topic: str, partition: int) -> int:
        """The position of the partition's last entry (0 for an empty stream): a reader placed there reads on."""
        last: Any = self.client.xrevrange(stream_name(topic, partition), count=1)
        return encode_id(last[0][0]) if last else 0

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

    def ping(self, timeout: float | None = None) -> bool:
        """Whether the Redis server (every cluster primary) answers; with ``timeout``, on a new short-lived client."""
        if timeout is None:
            return bool(self.client.ping())
        probe = self._connect(socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(probe.ping())
        finally:
            probe.close()

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None
