"""Changing the partition count of a used topic (`learnagg bus repartition`, docs/scale-out.md).

A change is safe only while nothing is in flight for the topic: every job reading it has handled every event
(lag 0), the outbox holds no row for it, and no live worker holds a lease on it (nor is a live member of a job
reading it), since running processes keep the count they read at start. The new count is stored, and each reader
gets a position at the current end of every partition it did not read before, so that nothing already in the log
is read again or skipped. On the embedded log the change holds the topic's producer lock until it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store.tables import bus_topic, consumer_member, consumer_offset, event_log, outbox


@dataclass(frozen=True)
class Plan:
    """What a repartition of ``topic`` would do, and why it would be refused (``refusals`` empty: safe)."""

    topic: str
    current: int
    wanted: int
    readers: list[str]
    opened: list[int]  # partitions whose positions are placed at the current end
    refusals: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line saying what changes."""
        if self.current == self.wanted:
            return f"{self.topic}: already {self.current} partition(s), nothing to do"
        line = f"{self.topic}: {self.current} -> {self.wanted} partition(s)"
        if self.opened and self.readers:
            span = str(self.opened[0]) if len(self.opened) == 1 else f"{self.opened[0]}-{self.opened[-1]}"
            line += f"; partition(s) {span} start at the current end for {', '.join(self.readers)}"
        return line


def plan(conn: Connection, log: DatabaseLog, topic: str, partitions: int, readers: Iterable[str], now_ms: int) -> Plan:
    """Check whether ``topic`` may get ``partitions`` partitions now; ``readers``: the jobs consuming it."""
    current = log.partitions(conn, topic, fix=False)
    c = consumer_offset.c
    stored = conn.execute(select(c.consumer).where(c.topic == topic).distinct()).scalars()
    jobs = sorted({*readers, *stored})
    refusals: list[str] = []
    for job in jobs:
        lag = sum(log.lags(conn, job, topic).values())
        if lag:
            refusals.append(f"{job} has {lag} unread event(s)")
    waiting = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.topic == topic)).scalar_one()
    if waiting:
        refusals.append(f"{waiting} outbox row(s) wait for the relay")
    held = conn.execute(
        select(c.consumer, c.partition, c.owner).where(c.topic == topic, c.owner.is_not(None), c.lease_until >= now_ms)
    ).first()
    if held is not None:
        refusals.append(f"{held.owner} holds the lease of {held.consumer} partition {held.partition}")
    m = consumer_member.c
    member = conn.execute(select(m.consumer, m.owner).where(m.consumer.in_(jobs), m.lease_until >= now_ms)).first()
    if member is not None:
        refusals.append(f"{member.owner} runs {member.consumer}")
    opened = list(range(current, partitions)) if partitions > current else []
    return Plan(topic, current, partitions, jobs, opened, refusals)


def apply(conn: Connection, log: DatabaseLog, chosen: Plan) -> None:
    """Store the new count and place the readers' positions in the opened partitions at the current end."""
    log.dialect.lock_topic(conn, chosen.topic)
    conn.execute(
        log.dialect.upsert(bus_topic, replace=["partitions"]), {"topic": chosen.topic, "partitions": chosen.wanted}
    )
    if not chosen.opened or not chosen.readers:
        return
    ends = {p: _end(conn, log, chosen.topic, p) for p in chosen.opened}
    c = consumer_offset.c
    rows: list[dict[str, Any]] = []
    for job in chosen.readers:
        for partition, end in ends.items():
            where = (c.consumer == job, c.topic == chosen.topic, c.partition == partition)
            known = conn.execute(select(c.seq).where(*where)).scalar_one_or_none() or 0
            rows.append({"consumer": job, "topic": chosen.topic, "partition": partition, "seq": max(known, end)})
    conn.execute(log.dialect.upsert(consumer_offset, replace=["seq"]), rows)


def _end(conn: Connection, log: DatabaseLog, topic: str, partition: int) -> int:
    """The position after which new events of the partition will come: the log's last seq, or the stream's end."""
    end = getattr(log, "end", None)
    if end is not None:
        return int(end(topic, partition))
    return int(conn.execute(select(func.coalesce(func.max(event_log.c.seq), 0))).scalar_one())
