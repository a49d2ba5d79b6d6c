"""What the consumer loop retries and what it isolates (docs/event-log.md "Poison events and retries").

A *transient* error says nothing about the events being handled: the connection was lost, the database is shutting
down, locked or out of resources, or PostgreSQL aborted the transaction to resolve a conflict (serialization failure,
deadlock, lock timeout). The whole batch is retried with exponential backoff. Any other error is blamed on an event:
the loop isolates the event(s) that raise it and sends them to the failed topic.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# PostgreSQL SQLSTATEs: serialization failure, deadlock, lock not available (lock_timeout), and the server shutting
# down or not accepting connections yet.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
# Whole SQLSTATE classes: connection exception, insufficient resources (disk full, too many connections), I/O error.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "58"})
# SQLite primary result codes: BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6, 10, 13, 14, 15})
_TRANSIENT_SQLITE_TEXT = ("database is locked", "database is busy", "database table is locked")

REASON_LIMIT = 500  # characters of a failed event's `validation_error`


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed: the error is not caused by the data being written."""
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False  # a bug or a value the driver refused before sending it (OverflowError, RecursionError, …)
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return (sqlite_code & 0xFF) in _TRANSIENT_SQLITE_CODES
    if any(text in str(orig).lower() for text in _TRANSIENT_SQLITE_TEXT):
        return True
    # A driver error without a code is a connection that failed or was lost (psycopg reports those without one).
    return isinstance(exc, OperationalError | InterfaceError)


def describe(exc: BaseException) -> str:
    """``<ExceptionType>: <first line>``, naming the driver's own exception when the store wrapped it
    (``NumericValueOutOfRange``, not ``DataError``)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__


def internal_error_reason(exc: BaseException) -> str:
    """A failed event's reason: ``internal error: <ExceptionType>: <first line>``, at most 500 characters."""
    return f"internal error: {describe(exc)}"[:REASON_LIMIT]


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures: ``base`` doubling up to ``cap``, with jitter.

    The jitter keeps between half and all of the exponential delay, so workers that failed together do not retry
    in step while the delay still grows.
    """
    if failures <= 0 or base <= 0:
        return 0.0
    exponent = min(failures - 1, 62)  # 2**62 seconds is past any cap; avoids an overflow for long outages
    delay = min(cap, base * 2.0**exponent)
    return delay * (0.5 + 0.5 * rand())
