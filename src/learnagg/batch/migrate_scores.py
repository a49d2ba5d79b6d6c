"""Score-metric migration (docs/batch.md#migrations-and-imports): legacy `agg` ints into `aggregates`, then S1–S5 for
each learner."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select, tuple_
from sqlalchemy.exc import OperationalError

from learnagg.adapters.store.scores import COURSE, Learner, context_id
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.app import App
from learnagg.batch.progress import NoProgress, Progress
from learnagg.domain.legacy_agg import MigrationSummary, StepSummary, backfill_update, copy_legacy_agg
from learnagg.services import group_cache
from learnagg.services.score_recompute import plan_scores

# Rows (and learners) per transaction come from settings `migration.*`: big enough to amortise commits, small
# enough to keep SQLite's single write lock (and PostgreSQL's row locks) short while the stream jobs run
# (ARCHITECTURE "Known pitfalls").
# A chunk that loses a deadlock or serialisation race on PostgreSQL is retried (it holds no state outside the
# transaction); more than this many losses in a row is reported as the error it is.
_RETRIES = 5
_RETRY_SQLSTATES = {"40P01", "40001"}

STEP_LEGACY = "agg-to-aggregates"
STEP_BACKFILL = "backfill"

_U = user_activity_agg.c
_A = assessment_aggregator.c
_ROW_KEY = (_U.activity_type, _U.activity_id, _U.user_id, _U.context_id)
_LEARNER_KEY = (_A.course_id, _A.batch_id, _A.user_id)
T = TypeVar("T")


@dataclass
class _Chunk:
    """One committed (or, in a dry run, rolled back) chunk: where the next starts, and what it counted."""

    last: tuple[str, ...] | None
    count: int
    counts: StepSummary
    users: set[str]


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


def _in_transaction(app: App, dry_run: bool, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction: a read transaction for a dry run (which writes nothing), else a write."""
    for attempt in range(1, _RETRIES + 1):
        scope: AbstractContextManager[Connection] = app.store.read() if dry_run else app.store.write()
        try:
            with scope as conn:
                return work(conn)
        except OperationalError as exc:
            if attempt == _RETRIES or not _retryable(exc):
                raise
    raise AssertionError("unreachable")


def _invalidate(app: App, users: set[str]) -> None:
    # S6, after the chunk has committed: a cached group answer must not outlive the scores it showed.
    if users:
        group_cache.invalidate_for_users(app.store, app.cache, users)


def _run_chunks(
    app: App,
    step: str,
    chunk: Callable[..., _Chunk],
    *,
    dry_run: bool,
    limit: int,
    summary: StepSummary,
    progress: Progress,
) -> None:
    """Run ``chunk`` page after page, one transaction each, until a page comes back short.

    The resume point is the last key of the previous page, so memory stays flat however large the table is;
    a chunk's counts are kept only once its transaction has finished (a retried chunk never counts twice).
    """
    after: Any = None
    while True:
        done = _in_transaction(app, dry_run, partial(chunk, after=after))
        summary.add(done.counts)
        progress.advance(step, done.count)
        if not dry_run:
            _invalidate(app, done.users)
        if done.count < limit or done.last is None:
            return
        after = done.last


# --- step 1: legacy ints -------------------------------------------------------------------------------------


def _legacy_scope(stmt: Any, batch_ids: Sequence[str] | None) -> Any:
    stmt = stmt.where(_U.agg.is_not(None))
    if batch_ids:
        stmt = stmt.where(_U.context_id.in_(sorted({context_id(b) for b in batch_ids})))
    return stmt


def _legacy_chunk(
    conn: Connection,
    *,
    app: App,
    after: tuple[str, ...] | None,
    batch_ids: Sequence[str] | None,
    dry_run: bool,
    limit: int,
) -> _Chunk:
    """One page of rows with an `agg` map, in key order."""
    summary = StepSummary(STEP_LEGACY)
    now = app.clock()  # docs/reference/data-model.md#c2: read once per unit of work
    stmt = _legacy_scope(select(*_ROW_KEY, _U.agg, _U.aggregates, _U.agg_last_updated), batch_ids)
    if after is not None:
        stmt = stmt.where(tuple_(*_ROW_KEY) > tuple_(*after))
    stmt = stmt.order_by(*_ROW_KEY).limit(limit)
    if not dry_run:
        # Read-modify-write: the row lock (PostgreSQL; SQLite has one writer) keeps a stream job from setting a
        # key between our read and our write, which the write would otherwise overwrite with a legacy int.
        stmt = app.store.dialect.lock_for_update(stmt)
    writes: list[dict[str, Any]] = []
    last: tuple[str, ...] | None = None
    count = 0
    for activity_type, activity_id, user_id, ctx, agg, aggregates, updated in conn.execute(stmt):
        count += 1
        last = (activity_type, activity_id, user_id, ctx)
        change = copy_legacy_agg(agg, aggregates, updated, now)
        if change is None:
            continue
        summary.rows_changed += 1
        summary.keys_added += change.keys_added
        writes.append(
            {
                "activity_type": activity_type,
                "activity_id": activity_id,
                "user_id": user_id,
                "context_id": ctx,
                "aggregates": change.aggregates,
                "agg_last_updated": change.agg_last_updated,
            }
        )
    summary.rows_examined = count
    if writes and not dry_run:
        # Whole maps from the locked read: every other key is kept (docs/reference/data-model.md#d2), and a JSON-null
        # map is replaced by an object instead of being concatenated with one.
        upsert = app.store.dialect.upsert(user_activity_agg, replace=["aggregates", "agg_last_updated"])
        conn.execute(upsert, writes)
    return _Chunk(last, count, summary, {w["user_id"] for w in writes})


def migrate_legacy_agg(
    app: App,
    *,
    batch_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> StepSummary:
    """docs/batch.md#migrations-and-imports: copy each legacy `agg` value into `aggregates` where that key is absent.

    Existing doubles are never overwritten, `agg` is never modified, and ``agg_last_updated[k] = now`` is set
    only where absent. Rows are read in key order, ``chunk_rows`` per transaction.

    Args:
        app: The application (store, clock, cache).
        batch_ids: Only rows of these batches (context ``cb:<batchId>``); all when None or empty.
        dry_run: Count what would change and write nothing.
        chunk_rows: Rows per transaction; None: setting `migration.chunk_rows`.
        progress: Told the step (its row total) and each chunk's rows.

    Returns:
        Rows examined (rows with an `agg` map), rows changed and keys added.
    """
    progress = progress or NoProgress()
    limit = app.settings.migration.chunk_rows if chunk_rows is None else chunk_rows
    summary = StepSummary(STEP_LEGACY)
    with app.store.read() as conn:
        total = conn.execute(_legacy_scope(select(func.count()).select_from(user_activity_agg), batch_ids)).scalar()
    progress.start(STEP_LEGACY, int(total or 0), unit="rows")
    _run_chunks(
        app,
        STEP_LEGACY,
        partial(_legacy_chunk, app=app, batch_ids=batch_ids, dry_run=dry_run, limit=limit),
        dry_run=dry_run,
        limit=limit,
        summary=summary,
        progress=progress,
    )
    return summary


# --- step 2: backfill from attempts ----------------------------------------------------------------------------


def _learner_scope(stmt: Any, batch_ids: Sequence[str] | None) -> Any:
    return stmt.where(_A.batch_id.in_(sorted(set(batch_ids)))) if batch_ids else stmt


def _learner_page(
    conn: Connection, after: Learner | None, batch_ids: Sequence[str] | None, limit: int
) -> list[Learner]:
    """Distinct (course_id, batch_id, user_id) of `assessment_aggregator` after ``after``, on the course index."""
    stmt = _learner_scope(select(*_LEARNER_KEY).distinct(), batch_ids)
    if after is not None:
        stmt = stmt.where(tuple_(*_LEARNER_KEY) > tuple_(*after))
    return [(c, b, u) for c, b, u in conn.execute(stmt.order_by(*_LEARNER_KEY).limit(limit))]


def _course_rows(conn: Connection, learners: set[Learner]) -> dict[Learner, Any]:
    """The stored course row of each learner (agg, aggregates, agg_last_updated, agg_details); missing left out."""
    stmt = select(_U.activity_id, _U.user_id, _U.context_id, _U.agg, _U.aggregates, _U.agg_last_updated, _U.agg_details)
    stmt = stmt.where(
        _U.activity_type == COURSE,
        _U.activity_id.in_(sorted({c for c, _, _ in learners})),
        _U.user_id.in_(sorted({u for _, _, u in learners})),
        _U.context_id.in_(sorted({context_id(b) for _, b, _ in learners})),
    )
    by_key = {(c, u, context_id(b)): (c, b, u) for c, b, u in learners}
    rows: dict[Learner, Any] = {}
    for row in conn.execute(stmt):
        learner = by_key.get((row.activity_id, row.user_id, row.context_id))
        if learner is not None:
            rows[learner] = row
    return rows


def _backfill_chunk(
    conn: Connection,
    *,
    app: App,
    after: Learner | None,
    batch_ids: Sequence[str] | None,
    dry_run: bool,
    limit: int,
) -> _Chunk:
    """S1–S5 for one page of learners."""
    summary = StepSummary(STEP_BACKFILL)
    now = app.clock()  # docs/reference/data-model.md#c2: read once per unit of work
    learners = _learner_page(conn, after, batch_ids, limit)
    if not learners:
        return _Chunk(None, 0, summary, set())
    wanted = set(learners)
    if not dry_run:
        app.store.dialect.lock_learners(conn, wanted)  # docs/reference/data-model.md#d3, before anything is read
    stored = _course_rows(conn, wanted)
    planned = plan_scores(
        conn,
        wanted,
        settings=app.settings.assessment,
        legacy=app.settings.legacy,
        now=now,
        details={learner: row.agg_details for learner, row in stored.items()},
    )
    writes: list[dict[str, Any]] = []
    for (course_id, batch_id, user_id), patch in sorted(planned.items()):
        row = stored.get((course_id, batch_id, user_id))
        change = backfill_update(
            row.aggregates if row else None,
            row.agg_last_updated if row else None,
            row.agg_details if row else None,
            metrics=patch.aggregates,
            details=patch.agg_details or [],
            now=now,
            legacy_agg=row.agg if row else None,
        )
        if change is None:  # already what S5 would write: left as is, agg_last_updated included
            continue
        summary.rows_changed += 1
        summary.rows_created += row is None
        summary.keys_added += change.keys_added
        summary.keys_updated += change.keys_updated
        writes.append(
            {
                "activity_type": COURSE,
                "activity_id": course_id,
                "user_id": user_id,
                "context_id": context_id(batch_id),
                "aggregates": change.aggregates,
                "agg_last_updated": change.agg_last_updated,
                "agg_details": patch.agg_details,
            }
        )
    summary.rows_examined = len(learners)
    if writes and not dry_run:
        # Whole maps from the read made under the learner lock: other keys (completedCount…) are kept and `agg`
        # is never written (S5); every writer of these keys takes the same lock.
        upsert = app.store.dialect.upsert(user_activity_agg, replace=["aggregates", "agg_last_updated", "agg_details"])
        conn.execute(upsert, writes)
    return _Chunk(learners[-1], len(learners), summary, {w["user_id"] for w in writes})


def backfill_scores(
    app: App,
    *,
    batch_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    chunk_learners: int | None = None,
    progress: Progress | None = None,
) -> StepSummary:
    """docs/batch.md#migrations-and-imports: S1–S6 for each distinct (course_id, batch_id, user_id) of
    `assessment_aggregator`.

    Creates missing course rows and emits no certificate requests. A learner whose row already holds what S5
    would write is left untouched, so a second run changes nothing. Learners are read in (course, batch, user)
    order, ``chunk_learners`` per transaction.

    Args:
        app: The application (store, settings, clock, cache).
        batch_ids: Only learners of these batches; all when None or empty.
        dry_run: Count what would change and write nothing.
        chunk_learners: Learners per transaction; None: setting `migration.chunk_learners`.
        progress: Told the step (its learner total) and each chunk's learners.

    Returns:
        Learners examined, rows changed (and created), metric keys added and updated.
    """
    progress = progress or NoProgress()
    limit = app.settings.migration.chunk_learners if chunk_learners is None else chunk_learners
    summary = StepSummary(STEP_BACKFILL)
    with app.store.read() as conn:
        distinct = _learner_scope(select(*_LEARNER_KEY).distinct(), batch_ids).subquery()
        total = conn.execute(select(func.count()).select_from(distinct)).scalar()
    progress.start(STEP_BACKFILL, int(total or 0), unit="learners")
    _run_chunks(
        app,
        STEP_BACKFILL,
        partial(_backfill_chunk, app=app, batch_ids=batch_ids, dry_run=dry_run, limit=limit),
        dry_run=dry_run,
        limit=limit,
        summary=summary,
        progress=progress,
    )
    return summary


# --- commands ------------------------------------------------------------------------------------------------


def migrate_scores(
    app: App,
    *,
    batch_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    legacy_only: bool = False,
    chunk_rows: int | None = None,
    chunk_learners: int | None = None,
    progress: Progress | None = None,
) -> MigrationSummary:
    """The score-metric migration (docs/batch.md#migrations-and-imports): step 1, then step 2, so attempt scores replace
    legacy ints.

    Args:
        app: The application.
        batch_ids: Limit both steps to these batches.
        dry_run: Report the counts and write nothing.
        legacy_only: Run step 1 alone (`learnagg migrate agg-to-aggregates`).
        chunk_rows: Step 1 rows per transaction; None: setting `migration.chunk_rows`.
        chunk_learners: Step 2 learners per transaction; None: setting `migration.chunk_learners`.
        progress: Progress reports of the steps.

    Returns:
        The counts of each step run.
    """
    started = time.perf_counter()
    scope = sorted(set(batch_ids)) if batch_ids else None
    name = "migrate agg-to-aggregates" if legacy_only else "migrate scores"
    summary = MigrationSummary(name, dry_run, scope)
    summary.steps.append(
        migrate_legacy_agg(app, batch_ids=scope, dry_run=dry_run, chunk_rows=chunk_rows, progress=progress)
    )
    if not legacy_only:
        summary.steps.append(
            backfill_scores(app, batch_ids=scope, dry_run=dry_run, chunk_learners=chunk_learners, progress=progress)
        )
    summary.seconds = time.perf_counter() - started
    return summary
