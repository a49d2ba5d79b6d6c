"""Expiring claims of batch work (`batch_lease`, docs/batch.md): one run at a time works on a named unit.

A lease is taken with one conditional upsert (free, expired, or already ours), renewed by a heartbeat thread while
the work runs, and deleted when the work ends. A run that crashed leaves its lease to expire; another run then
takes it. Every write that must only happen while the lease is held calls :meth:`Lease.fence` in the same
transaction: the renewal locks the lease row until commit (PostgreSQL) or runs under the single writer (SQLite),
so a run whose lease was taken over can no longer commit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, delete, or_, update

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import batch_lease
from learnagg.domain.clock import Clock

log = logging.getLogger("learnagg.leases")
_l = batch_lease.c


class LeaseLost(RuntimeError):
    """Another run holds the lease now: the work stops and writes nothing more."""


def new_owner() -> str:
    """A run's identity: ``<hostname>:<pid>:<random>`` (unique even for two runs of one process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(store: Store, name: str, owner: str, now: int, lease_ms: int) -> bool:
    """Take the lease ``name`` until ``now + lease_ms`` if it is free, expired or already ``owner``'s."""
    stmt = store.dialect.insert(batch_lease).values(name=name, owner=owner, lease_until=now + lease_ms)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"owner": stmt.excluded.owner, "lease_until": stmt.excluded.lease_until},
        where=or_(_l.lease_until < now, _l.owner == owner),
    )
    with store.write() as conn:
        # RETURNING, not rowcount: PostgreSQL drivers may count a conflicting row the WHERE kept unchanged.
        return conn.execute(stmt.returning(_l.owner)).first() is not None


def renew(conn: Connection, name: str, owner: str, until: int) -> bool:
    """Extend ``owner``'s lease to ``until`` in ``conn``'s transaction; False when another run holds it."""
    stmt = update(batch_lease).where(_l.name == name, _l.owner == owner).values(lease_until=until)
    return bool(conn.execute(stmt).rowcount)


def release(store: Store, name: str, owner: str) -> None:
    """Give the lease up (only if ``owner`` still holds it)."""
    with store.write() as conn:
        conn.execute(delete(batch_lease).where(_l.name == name, _l.owner == owner))


class Lease:
    """A held lease: :meth:`fence` inside each guarded transaction, :attr:`lost` between steps."""

    def __init__(self, store: Store, clock: Clock, name: str, owner: str, lease_ms: int) -> None:
        """A lease already acquired by ``owner``."""
        self.store = store
        self.clock = clock
        self.name = name
        self.owner = owner
        self.lease_ms = lease_ms
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        """True once a renewal found another owner."""
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`LeaseLost` if a renewal already found another owner."""
        if self.lost:
            raise LeaseLost(f"lease {self.name} was taken over by another run")

    def fence(self, conn: Connection) -> None:
        """Renew in ``conn``'s transaction, so what it writes commits only while this run holds the lease.

        Raises:
            LeaseLost: another run holds it.
        """
        if not renew(conn, self.name, self.owner, self.clock() + self.lease_ms):
            self._lost.set()
            raise LeaseLost(f"lease {self.name} was taken over by another run")

    def beat(self) -> None:
        """One renewal in its own transaction (the heartbeat)."""
        with self.store.write() as conn:
            if not renew(conn, self.name, self.owner, self.clock() + self.lease_ms):
                self._lost.set()


@contextmanager
def renewing(
    interval: float, beat: Callable[[], None], what: str, stop: Callable[[], bool] = lambda: False
) -> Iterator[None]:
    """Call ``beat`` every ``interval`` seconds in a thread while the body runs (until ``stop()``); a beat that
    fails is logged and only shortens the lease, it never ends the heartbeat."""
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(interval) and not stop():
            try:
                beat()
            except Exception:
                log.warning("could not renew the lease of %s", what, exc_info=True)

    thread = threading.Thread(target=heartbeat, name=f"lease-{what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def held(store: Store, clock: Clock, name: str, owner: str, lease_seconds: float) -> Iterator[Lease | None]:
    """Acquire ``name``, renew it every third of its length while the body runs, release it after.

    Yields None (and does nothing) when another run holds the lease.
    """
    lease_ms = int(lease_seconds * 1000)
    if not acquire(store, name, owner, clock(), lease_ms):
        yield None
        return
    lease = Lease(store, clock, name, owner, lease_ms)
    try:
        with renewing(lease_seconds / 3, lease.beat, name, stop=lambda: lease.lost):
            yield lease
    finally:
        try:
            release(store, name, owner)
        except Exception:  # the lease expires on its own
            log.warning("could not release lease %s", name, exc_info=True)
