"""Leases of (consumer group, partition) in the store, and the heartbeat of the workers of a group.

A worker owns a partition while ``consumer_offset.owner`` is its id and ``lease_until`` (epoch ms) is not past;
live workers renew a ``consumer_member`` row, and the partitions are spread evenly over them
(docs/scale-out.md).
"""

from __future__ import annotations

import os
import socket

from sqlalchemy import Connection, and_, delete, or_, select, update

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import consumer_member, consumer_offset


def worker_id() -> str:
    """This process's worker id, ``<hostname>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat(dialect: Dialect, conn: Connection, consumer: str, owner: str, now_ms: int, lease_ms: int) -> list[str]:
    """Renew ``owner``'s membership of the group; return the live members in a stable order."""
    stmt = dialect.upsert(consumer_member, replace=["lease_until"])
    conn.execute(stmt, {"consumer": consumer, "owner": owner, "lease_until": now_ms + lease_ms})
    conn.execute(
        delete(consumer_member).where(consumer_member.c.consumer == consumer, consumer_member.c.lease_until < now_ms)
    )
    rows = conn.execute(
        select(consumer_member.c.owner).where(consumer_member.c.consumer == consumer).order_by(consumer_member.c.owner)
    )
    return [r[0] for r in rows]


def share(partitions: int, members: list[str], owner: str) -> list[int]:
    """The partitions ``owner`` should hold: every n-th one, n the number of live members."""
    if owner not in members:
        return list(range(partitions))
    index, count = members.index(owner), len(members)
    return [p for p in range(partitions) if p % count == index]


def acquire(
    dialect: Dialect,
    conn: Connection,
    consumer: str,
    topic: str,
    partition: int,
    owner: str,
    now_ms: int,
    lease_ms: int,
) -> bool:
    """Take or renew the lease of a partition when it is free, expired or already ``owner``'s."""
    conn.execute(
        dialect.upsert(consumer_offset), {"consumer": consumer, "topic": topic, "partition": partition, "seq": 0}
    )
    c = consumer_offset.c
    stmt = (
        update(consumer_offset)
        .where(
            c.consumer == consumer,
            c.topic == topic,
            c.partition == partition,
            or_(c.owner.is_(None), c.owner == owner, and_(c.lease_until.is_not(None), c.lease_until < now_ms)),
        )
        .values(owner=owner, lease_until=now_ms + lease_ms)
    )
    return conn.execute(stmt).rowcount == 1


def release(
    conn: Connection,
    consumer: str,
    topic: str,
    owner: str,
    partitions: list[int] | None = None,
    now_ms: int | None = None,
) -> None:
    """Give up ``owner``'s leases (all of them, or those of ``partitions``) so others take them at once.

    ``now_ms`` records when a rebalance gave them up (``lease_until`` of a free partition): one its new owner does
    not take soon is then adopted like an expired one (`abandoned`).
    """
    c = consumer_offset.c
    stmt = update(consumer_offset).where(c.consumer == consumer, c.topic == topic, c.owner == owner)
    if partitions is not None:
        stmt = stmt.where(c.partition.in_(partitions))
    conn.execute(stmt.values(owner=None, lease_until=now_ms))


def abandoned(conn: Connection, consumer: str, topic: str, before_ms: int) -> list[int]:
    """Partitions whose lease ended (or that were given up in a rebalance) before ``before_ms`` and nobody took."""
    c = consumer_offset.c
    stmt = select(c.partition).where(
        c.consumer == consumer, c.topic == topic, c.lease_until.is_not(None), c.lease_until < before_ms
    )
    return sorted(conn.execute(stmt).scalars())


def leave(conn: Connection, consumer: str, topic: str, owner: str) -> None:
    """A clean stop: release every lease and the membership."""
    release(conn, consumer, topic, owner)
    conn.execute(
        delete(consumer_member).where(consumer_member.c.consumer == consumer, consumer_member.c.owner == owner)
    )
