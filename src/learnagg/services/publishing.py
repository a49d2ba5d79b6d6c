"""Publishing from a write transaction, on any bus (docs/scale-out.md "The outbox").

On the embedded log an append is part of the caller's transaction: the events become visible with its commit, or
never. A bus outside the store (Redis Streams) cannot join that transaction, so :func:`append` writes the events
to the outbox in it instead, and :func:`transaction` relays them right after the commit, payload (and so `mid`)
unchanged. A request whose transaction fails publishes nothing; a crash between the commit and the relay leaves
the rows in the outbox for the next relay (any worker's, or the next request's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection

from learnagg.adapters.bus.log import EventLog
from learnagg.adapters.bus.outbox import RELAY_CHUNK, Outbox
from learnagg.adapters.store.store import Store
from learnagg.app import App
from learnagg.domain.clock import Clock
from learnagg.errors import first_line

log = logging.getLogger(__name__)

SOURCE = "api"  # the `outbox.consumer` of rows written by requests (jobs write their own name)
_PENDING = "learnagg.outbox_pending"  # a flag in the connection's info: the transaction wrote outbox rows


def transactional(bus: EventLog) -> bool:
    """Whether an append to ``bus`` is part of the caller's transaction (the embedded log)."""
    return bool(getattr(bus, "transactional", True))


def append(conn: Connection, app: App, topic: str, events: Sequence[tuple[str | None, str]], now: int) -> None:
    """Publish (key, payload) pairs with the transaction of ``conn``: in the log itself, or through the outbox."""
    if not events:
        return
    if transactional(app.log):
        app.log.append(conn, topic, events, now)
        return
    Outbox(app.store.dialect).add(conn, topic, events, now, consumer=SOURCE, partition=0)
    conn.info[_PENDING] = True


@contextmanager
def transaction(app: App) -> Iterator[Connection]:
    """A write transaction whose :func:`append` calls reach the bus once it has committed."""
    with app.store.write() as conn:
        try:
            yield conn
        finally:
            pending = bool(conn.info.pop(_PENDING, False))
    if pending:
        relay_logged(app.store, app.log, app.clock, SOURCE)


def relay(store: Store, bus: EventLog, clock: Clock, outbox: Outbox | None = None) -> int:
    """Publish every committed outbox row to ``bus`` (a transaction per chunk); return how many were moved."""
    outbox = outbox or Outbox(store.dialect)
    moved = 0
    while True:
        with store.write() as conn:
            count = outbox.relay(conn, bus, clock(), limit=RELAY_CHUNK)
        moved += count
        if count < RELAY_CHUNK:  # a short chunk emptied the outbox: rows committed since are their producers' to relay
            return moved


def relay_logged(store: Store, bus: EventLog, clock: Clock, source: str, outbox: Outbox | None = None) -> int:
    """:func:`relay`, after a commit: a failure is logged and the rows wait in the outbox for the next relay."""
    try:
        return relay(store, bus, clock, outbox)
    except Exception as exc:
        log.warning("%s: outbox relay failed, retried later: %s", source, first_line(exc))
        return 0
