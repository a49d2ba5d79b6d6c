"""Which partitions of its input topic a job consumer may read: leases with heartbeat (docs/scale-out.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, text

from learnagg.adapters.bus import leases
from learnagg.adapters.bus.log import EventLog
from learnagg.adapters.store.store import Store
from learnagg.errors import first_line

log = logging.getLogger(__name__)

RETRY_SOON = 0.25  # seconds until a worker tries again for a partition of its share held by another
MAX_HALVINGS = 16  # a batch size is halved at most this often (500 → 1 after 9)


def wall_ms() -> int:
    """Epoch milliseconds of the real clock (leases are shared between machines: never a test clock)."""
    return int(time.time() * 1000)


class PartitionOwnership:
    """The leases one worker holds for one consumer group, renewed every third of a lease period.

    Without pinned partitions the worker registers as a live member and takes its even share; with pinned
    partitions it takes only those (as soon as they are free) and does not count as a member.
    """

    def __init__(
        self,
        *,
        store: Store,
        log_: EventLog,
        consumer: str,
        topic: str,
        owner: str,
        lease_seconds: float,
        pinned: Sequence[int] | None = None,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        """Bind the group, its topic and this worker's id."""
        self.store = store
        self.log = log_
        self.consumer = consumer
        self.topic = topic
        self.owner = owner
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.pinned = sorted(set(pinned)) if pinned is not None else None
        self.now_ms = now_ms
        self.owned: list[int] = []
        self.count = 0  # the topic's partition count, once known
        self._due = 0.0  # time.monotonic() of the next renewal
        self.halvings: dict[int, int] = {}  # per partition: how often its batch size was halved after a lost lease
        self.peers: list[PartitionOwnership] = [self]  # the ownerships of the worker's jobs (see `group`)
        self.adopted: dict[int, int] = {}  # partitions outside the share taken over (see `_adopt`): since (epoch ms)

    @staticmethod
    def group(members: Sequence[PartitionOwnership]) -> None:
        """Renew the leases of one worker's jobs together: a round of all its jobs may outlast a lease."""
        for member in members:
            member.peers = list(members)

    def holds(self, partition: int) -> bool:
        """Renew every due lease of the worker's jobs (before each batch); whether ``partition`` is still held.

        A peer whose renewal fails is left to its own turn (where the failure is retried with backoff): one job's
        blocked leases must not stop the worker's other jobs.
        """
        for peer in self.peers:
            if peer is self:
                peer.refresh()
                continue
            try:
                peer.refresh()
            except Exception as exc:
                log.warning("%s: could not renew the leases of %s: %s", self.consumer, peer.consumer, first_line(exc))
        return partition in self.owned

    def refresh(self, *, force: bool = False) -> list[int]:
        """Renew the membership and leases when due; return the partitions held."""
        if not force and time.monotonic() < self._due:
            return self.owned
        dialect = self.store.dialect
        with self.store.write() as conn:
            self.bound_stall(conn)
            now = self.now_ms()
            self.count = self.log.partitions(conn, self.topic)
            if self.pinned is not None:
                target = [p for p in self.pinned if p < self.count]
            else:
                members = leases.heartbeat(dialect, conn, self.consumer, self.owner, now, self.lease_ms)
                target = leases.share(self.count, members, self.owner)
            # An adopted partition is kept for one lease period, then given back to the share's owner.
            self.adopted = {p: t for p, t in self.adopted.items() if p not in target and t + self.lease_ms > now}
            dropped = [p for p in self.owned if p not in target and p not in self.adopted]
            if dropped:
                leases.release(conn, self.consumer, self.topic, self.owner, dropped, now)
            held = [p for p in target + sorted(self.adopted) if self._acquire(conn, p, now)]
            self.adopted = {p: t for p, t in self.adopted.items() if p in held}
            if self.pinned is None:
                held += self._adopt(conn, now, set(target))
        if held != self.owned:
            log.info("%s: %s holds partition(s) %s of %s", self.consumer, self.owner, held or "none", self.topic)
        self.owned = held
        # A partition of this worker's share still leased by another (which releases it at its own next renewal) is
        # tried again soon rather than a third of a lease later, so a rebalanced partition is not left unowned.
        period = self.lease_ms / 3000 if set(target) <= set(held) else min(RETRY_SOON, self.lease_ms / 3000)
        self._due = time.monotonic() + period
        return held

    def _acquire(self, conn: Connection, partition: int, now: int) -> bool:
        return leases.acquire(
            self.store.dialect, conn, self.consumer, self.topic, partition, self.owner, now, self.lease_ms
        )

    def _adopt(self, conn: Connection, now: int, target: set[int]) -> list[int]:
        """Take the partitions nobody has held for a third of a lease since their lease ended or was given up.

        The share's owner of such a partition is dead but still counted as a member (for up to a lease), or
        was itself assigned it after dying: without adoption a partition could stay unowned while worker after
        worker dies. An adopted partition is worked like the share and kept for one lease period.
        """
        before = now - self.lease_ms // 3
        out = []
        for partition in leases.abandoned(conn, self.consumer, self.topic, before):
            if partition < self.count and partition not in target and self._acquire(conn, partition, now):
                self.adopted[partition] = now
                out.append(partition)
        if out:
            log.info("%s: %s adopts unowned partition(s) %s of %s", self.consumer, self.owner, out, self.topic)
        return out

    def bound_stall(self, conn: Connection) -> None:
        """End this transaction on the server if the worker stalls in it for a lease period (PostgreSQL).

        A worker paused mid-batch (SIGSTOP, a frozen machine) would otherwise keep the row locks of its
        partition's position and of its learners: no other worker could take the partition over, and a worker
        waiting for one of those locks would stall too. The server rolls such a transaction back; the worker,
        if it ever resumes, finds its connection closed and commits nothing.
        """
        if self.store.backend == "postgresql":
            conn.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {self.lease_ms}"))

    def lost(self, partition: int) -> None:
        """Forget a partition whose lease was taken; the next round renews the leases first.

        The partition's next batches are half as large: a batch that outlasts the lease (an overloaded machine, a
        batch size too large for ``worker.lease_seconds``) is refused at commit, and would be forever at its size.
        """
        if partition in self.owned:
            self.owned.remove(partition)
        self.adopted.pop(partition, None)
        self.halvings[partition] = min(self.halvings.get(partition, 0) + 1, MAX_HALVINGS)
        self._due = 0.0

    def batch_limit(self, partition: int, batch_size: int) -> int:
        """The events to fetch for the next batch of ``partition``: ``batch_size``, halved after each lost lease."""
        return max(1, batch_size >> self.halvings.get(partition, 0))

    def unowned_backlog(self) -> int:
        """Partitions this worker should drain but does not hold and that still have events (``--until-idle``)."""
        lags = getattr(self.log, "lags", None)
        if lags is None:
            return 0
        with self.store.read() as conn:
            per_partition: dict[int, int] = lags(conn, self.consumer, self.topic)
        wanted = self.pinned if self.pinned is not None else list(per_partition)
        return sum(1 for p in wanted if p not in self.owned and per_partition.get(p, 0) > 0)

    def leave(self) -> None:
        """Release every lease (and the membership) so other workers take the partitions at once."""
        with self.store.write() as conn:
            if self.pinned is None:
                leases.leave(conn, self.consumer, self.topic, self.owner)
            else:
                leases.release(conn, self.consumer, self.topic, self.owner)
        self.owned = []
        self.adopted = {}
        self._due = 0.0
