"""The `activity_agg` table: per course batch enrolled, completed and completion percentage (docs/api.md).

Every change that moves those numbers calls :func:`refresh` in its own transaction, so the table always equals a
recount from `user_enrolments`. :func:`refresh` locks the rows of the batches first (an insert of a placeholder
row, then ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time), and only then counts: in
PostgreSQL's read-committed mode the count is a new statement that sees every change committed before the lock
was granted, so the last writer of a batch always writes the exact numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select, tuple_

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import activity_agg, course_batch, user_enrolments, users
from learnagg.domain.activity_agg import COURSE, batch_metrics, batch_of, context_id, metric_entries, stamps_for
from learnagg.domain.identity import Caller
from learnagg.errors import unauthorized
from learnagg.services.identity import is_platform_admin

Pair = tuple[str, str]  # (course id, batch id)
COMPLETED_STATUS = 2
MENTOR_ROLE = "COURSE_MENTOR"
_CHUNK = 500  # batches per statement


@dataclass(slots=True)
class RebuildSummary:
    """What a rebuild found: batches examined, rows created, rows changed and stale rows removed."""

    examined: int = 0
    created: int = 0
    changed: int = 0
    removed: int = 0

    def to_json(self) -> dict[str, int]:
        """The machine-readable summary."""
        return {"examined": self.examined, "created": self.created, "changed": self.changed, "removed": self.removed}


def _chunks(pairs: list[Pair]) -> Iterable[list[Pair]]:
    for start in range(0, len(pairs), _CHUNK):
        yield pairs[start : start + _CHUNK]


def _counts(conn: Connection, pairs: list[Pair] | None) -> dict[Pair, tuple[int, int]]:
    """(active enrolments, active completed enrolments) per batch; every batch when ``pairs`` is None."""
    e = user_enrolments.c
    done = func.sum(case((e.status == COMPLETED_STATUS, 1), else_=0))
    stmt = select(e.courseid, e.batchid, func.count(), done).where(e.active.is_(True))
    if pairs is not None:
        stmt = stmt.where(tuple_(e.courseid, e.batchid).in_(pairs))
    rows = conn.execute(stmt.group_by(e.courseid, e.batchid)).all()
    return {(c, b): (int(n), int(d or 0)) for c, b, n, d in rows}


def _stored(conn: Connection, dialect: Dialect, pairs: list[Pair] | None, *, lock: bool) -> dict[Pair, Any]:
    a = activity_agg.c
    stmt = select(a.activity_id, a.context_id, a.agg, a.agg_last_updated).where(a.activity_type == COURSE)
    if pairs is not None:
        stmt = stmt.where(tuple_(a.activity_id, a.context_id).in_([(c, context_id(b)) for c, b in pairs]))
    stmt = stmt.order_by(a.activity_id, a.context_id)
    if lock:
        stmt = dialect.lock_for_update(stmt)
    return {(c, batch_of(ctx)): (agg, stamps) for c, ctx, agg, stamps in conn.execute(stmt)}


def _rows(
    pairs: Iterable[Pair], counts: Mapping[Pair, tuple[int, int]], stored: Mapping[Pair, Any], now: int
) -> tuple[list[dict[str, Any]], int]:
    """The rows to write (new or different) and how many of them are new."""
    rows: list[dict[str, Any]] = []
    created = 0
    for pair in pairs:
        new = batch_metrics(*counts.get(pair, (0, 0)))
        old, old_stamps = stored.get(pair) or (None, None)
        if isinstance(old, dict) and old == new:
            continue
        created += old is None
        old_map = old if isinstance(old, dict) else {}
        stamps = stamps_for(new, old_map, old_stamps if isinstance(old_stamps, dict) else {}, now)
        rows.append(
            {"activity_type": COURSE, "activity_id": pair[0], "context_id": context_id(pair[1]), "agg": new}
            | {"agg_last_updated": stamps}
        )
    return rows, created


def refresh(conn: Connection, dialect: Dialect, pairs: Iterable[Pair], now: int) -> int:
    """Recount the given batches into `activity_agg` inside the caller's write transaction.

    Args:
        conn: the write transaction that changed `user_enrolments` (or `course_batch`).
        dialect: the store dialect.
        pairs: (course id, batch id) of every batch whose numbers may have moved.
        now: epoch ms for the times of the metrics that change.

    Returns:
        The number of rows written (new or changed).
    """
    written = 0
    for chunk in _chunks(sorted(set(pairs))):
        placeholders = [{"activity_type": COURSE, "activity_id": c, "context_id": context_id(b)} for c, b in chunk]
        conn.execute(dialect.upsert(activity_agg), placeholders)  # ON CONFLICT DO NOTHING: a row to lock
        stored = _stored(conn, dialect, chunk, lock=True)
        counts = _counts(conn, chunk)
        # A pair that is no batch and has no active enrolment (an import of an unenrolment in a batch not
        # imported yet) has no row, as a rebuild leaves it.
        kept = _batches(conn, chunk) | set(counts)
        _remove(conn, [pair for pair in chunk if pair not in kept])
        rows, _ = _rows([pair for pair in chunk if pair in kept], counts, stored, now)
        if rows:
            conn.execute(dialect.upsert(activity_agg, replace=["agg", "agg_last_updated"]), rows)
        written += len(rows)
    return written


def _batches(conn: Connection, pairs: list[Pair]) -> set[Pair]:
    """The pairs that name a batch of `course_batch`."""
    b = course_batch.c
    stmt = select(b.courseid, b.batchid).where(tuple_(b.courseid, b.batchid).in_(pairs))
    return {(c, batch) for c, batch in conn.execute(stmt)}


def _remove(conn: Connection, pairs: list[Pair]) -> None:
    a = activity_agg.c
    for chunk in _chunks(pairs):
        keys = [(c, context_id(b)) for c, b in chunk]
        where = tuple_(a.activity_id, a.context_id).in_(keys)
        conn.execute(activity_agg.delete().where(a.activity_type == COURSE, where))


def expected(conn: Connection) -> dict[Pair, dict[str, float]]:
    """The table as a recount from `user_enrolments` gives it: every batch of `course_batch`, plus any batch that
    only enrolments name."""
    counts = _counts(conn, None)
    pairs = set(counts) | {(c, b) for c, b in conn.execute(select(course_batch.c.courseid, course_batch.c.batchid))}
    return {pair: batch_metrics(*counts.get(pair, (0, 0))) for pair in pairs}


def stored(conn: Connection) -> dict[Pair, Any]:
    """The `Course` rows of `activity_agg` by batch: their ``agg`` maps."""
    return {pair: agg for pair, (agg, _) in _stored(conn, Dialect(), None, lock=False).items()}


def rebuild(conn: Connection, dialect: Dialect, now: int, *, dry_run: bool = False) -> RebuildSummary:
    """Make `activity_agg` equal a recount from `user_enrolments` (``learnagg migrate activity-agg``).

    Idempotent: a second run writes nothing. Rows of pairs that are no batch of `course_batch` and have no active
    enrolment are removed. With ``dry_run`` nothing is written and the summary says what would change.
    """
    want = expected(conn)
    have = _stored(conn, dialect, None, lock=False)
    summary = RebuildSummary(examined=len(want))
    rows, summary.created = _rows(sorted(want), _counts(conn, None), have, now)
    summary.changed = len(rows) - summary.created
    stale = sorted(set(have) - set(want))
    summary.removed = len(stale)
    if dry_run:
        return summary
    if rows:
        refresh(conn, dialect, [(r["activity_id"], batch_of(r["context_id"])) for r in rows], now)
    _remove(conn, stale)
    return summary


def _may_read(conn: Connection, caller: Caller) -> bool:
    if is_platform_admin(conn, caller):
        return True
    roles = conn.execute(select(users.c.roles).where(users.c.id == caller.user_id)).scalar_one_or_none()
    return isinstance(roles, list) and MENTOR_ROLE in roles


def read(store: Store, caller: Caller, activity_id: str, activity_type: str, context: str | None) -> dict[str, Any]:
    """``POST /data/activity/agg``: the stored metrics of every context of one activity (or of one context).

    Raises:
        ApiError: 403 UNAUTHORIZED_USER unless the caller is a platform admin or holds ``COURSE_MENTOR``.
    """
    a = activity_agg.c
    stmt = select(a.context_id, a.agg, a.agg_last_updated).where(
        a.activity_type == activity_type, a.activity_id == activity_id
    )
    if context is not None:
        stmt = stmt.where(a.context_id.in_({context, context_id(context)}))
    with store.read() as conn:
        if not _may_read(conn, caller):
            raise unauthorized(403)
        rows = conn.execute(stmt.order_by(a.context_id)).all()
    contexts = [
        {
            "contextId": ctx,
            "agg": metric_entries(agg if isinstance(agg, dict) else {}, stamps if isinstance(stamps, dict) else {}),
        }
        for ctx, agg, stamps in rows
    ]
    return {"activity": {"id": activity_id, "type": activity_type, "contexts": contexts}}
