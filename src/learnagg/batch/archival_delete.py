"""Assessment archival, delete mode (docs/batch.md#assessment-archival): verify each archived file, then delete exactly
its rows.

Design (what survives a kill):
1. The whole file is read and checked first. With a recorded checksum (every file this job archives) its
   uncompressed bytes must hash to it: the very bytes written, so the same rows and row count. Without one
   (older or imported files) every line is parsed, every row must belong to the metadata's batch, and the count
   must match when recorded. Any failure marks the deletion FAILED with the reason, adds 1 to `iteration`,
   and deletes nothing.
2. The file is then read again and cut into groups of whole learners (about `archival.chunk_rows` rows). Each
   group is one transaction: the learners' scores are recomputed with the archived rows as an extra source
   (docs/jobs/assessment.md#score-aggregation, so every archived attempt is in `agg_details` first), then the file's
   keys whose live row still
   has the archived `updated_on` are deleted. The last group's transaction first checks that this pass read the
   verified bytes and the recorded row count, and also sets `deletion_status=SUCCESS`.
3. So each learner's rows are deleted together with the recompute that preserves them, or not at all. A process
   killed part-way leaves earlier groups deleted and the file not marked; the next `archive delete` verifies the
   same file again and replays every group (recomputing is idempotent and already-deleted keys delete nothing),
   then marks it. A file of one group (up to `chunk_rows` rows, the usual case) is deleted entirely or not at
   all. Even a wrong archive cannot lower a score: recomputing before deleting lets live rows win
   (docs/jobs/assessment.md#s3).
4. Each archive is claimed with the same lease as its partition in archive mode (`batch_lease`), its metadata
   is read again under the lease, and every transaction is fenced by it: concurrent runs split the archives, each
   is deleted once, and no archive is verified while it is being written (docs/batch.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, func, or_, select, text
from sqlalchemy.engine import Row

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import Lease
from learnagg.adapters.store.scores import Learner
from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator
from learnagg.app import App
from learnagg.batch.archival_partitions import FAILED, MAX_ITERATIONS, SUCCESS, lease_name, shorten
from learnagg.batch.archival_pool import run_pool, worker_count
from learnagg.batch.archival_scope import ArchivalScope, resolve_scope, scope_filter
from learnagg.batch.claims import Claimer
from learnagg.batch.progress import NoProgress, Progress
from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar
from learnagg.domain.attempt_metrics import AttemptRecord
from learnagg.services import group_cache
from learnagg.services.score_recompute import recompute_scores

STEP = "verify+delete"  # the step a delete run reports progress under
_m = archival_metadata.c
_a = assessment_aggregator.c
# Exactly the archived keys, and only while the live row is the archived version (docs/batch.md#assessment-archival
# delete step 2b). PostgreSQL: the keys as six arrays joined to the table, one statement per group of learners.
_PG_DELETE = text(
    "DELETE FROM assessment_aggregator a USING unnest(CAST(:u AS text[]), CAST(:c AS text[]), CAST(:b AS text[]), "
    "CAST(:n AS text[]), CAST(:t AS text[]), CAST(:w AS bigint[])) AS k(u, c, b, n, t, w) "
    "WHERE a.user_id = k.u AND a.course_id = k.c AND a.batch_id = k.b AND a.content_id = k.n "
    "AND a.attempt_id = k.t AND a.updated_on = k.w"
)
# SQLite: one prepared statement run for every key by the driver (in-process, no round trips); a row-value
# `IN (VALUES …)` of the same keys scans the whole table, since updated_on is not in the key's index.
_SQLITE_DELETE = (
    "DELETE FROM assessment_aggregator WHERE user_id = ? AND course_id = ? AND batch_id = ? AND content_id = ? "
    "AND attempt_id = ? AND updated_on = ?"
)


def delete_archived(conn: Connection, keys: list[tuple[str, str, str, str, str, int]]) -> int:
    """Delete the rows with these (user, course, batch, content, attempt, updated_on) values; the count deleted."""
    if not keys:
        return 0
    if conn.dialect.name == "postgresql":
        columns = dict(zip("ucbntw", (list(c) for c in zip(*keys, strict=True)), strict=True))
        return int(conn.execute(_PG_DELETE, columns).rowcount)
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_DELETE, keys)
        return int(cursor.rowcount)  # summed over the keys
    finally:
        cursor.close()


class DeletionRefused(ValueError):
    """The archive does not match its metadata; nothing is deleted."""


@dataclass
class DeleteSummary:
    """What a delete run did (the `--json` object)."""

    files: int = 0
    deleted: int = 0
    failed: int = 0
    held: int = 0  # claimed by another run that kept working on them: that run finishes them
    lost: int = 0  # taken over by another run while this one worked on them
    rows_read: int = 0
    rows_deleted: int = 0
    rows_kept: int = 0  # rewritten after archiving, or already deleted by an interrupted run
    learners: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {"mode": "delete", **asdict(self)}

    def add(self, other: DeleteSummary) -> None:
        """Count what another process did for this run (its files are already counted here)."""
        for name in ("deleted", "failed", "rows_read", "rows_deleted", "rows_kept", "learners"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)


def deletion_targets_query() -> Any:
    """SELECT the metadata rows still to delete (docs/batch.md#assessment-archival delete mode targets)."""
    return select(archival_metadata).where(
        _m.archival_status == SUCCESS,
        or_(_m.deletion_status.is_(None), _m.deletion_status != SUCCESS),
        func.coalesce(_m.iteration, 0) < MAX_ITERATIONS,
    )


def deletion_targets(conn: Connection, pairs: list[tuple[str, str]] | None) -> list[Row[Any]]:
    """Metadata rows archived successfully, not deleted yet, below the iteration limit
    (docs/batch.md#assessment-archival delete mode)."""
    stmt = deletion_targets_query()
    where = scope_filter(pairs, _m.collection_id, _m.batch_id)
    if where is not None:
        stmt = stmt.where(where)
    return list(conn.execute(stmt.order_by(_m.collection_id, _m.batch_id, _m.request_id)))


def run_delete(
    app: App, blobs: ObjectStore, scope: ArchivalScope | None = None, *, progress: Progress | None = None
) -> DeleteSummary:
    """Delete the archived rows of every verified archive in scope (docs/batch.md#assessment-archival delete mode,
    docs/reference/compatibility.md#3).

    Args:
        app: the application (store, clock, cache, settings).
        blobs: where the archives are.
        scope: the batches; all when None.
        progress: told the step ``verify+delete`` (each file's rows twice: read, then deleted), then the rows
            and files done.

    Raises:
        InputError: an unknown batch in the scope (nothing done).
        ObjectStoreError: the object store cannot be used at all (nothing done).
    """
    started = time.perf_counter()
    progress = progress or NoProgress()
    with app.store.read() as conn:
        pairs = resolve_scope(conn, scope or ArchivalScope())
        targets = deletion_targets(conn, pairs)
    if targets:
        blobs.check()  # an unreachable store stops here, before any file is marked FAILED
    summary = DeleteSummary(files=len(targets))
    # Each file is read twice: once to verify, once to delete.
    progress.start(STEP, 2 * sum(t.row_count or 0 for t in targets), files=len(targets))

    def work(target: Row[Any], lease: Lease) -> None:
        _work_file(app, blobs, target, lease, summary, progress)

    def child_work(target: Row[Any], lease: Lease) -> DeleteSummary:
        delta = DeleteSummary()
        _work_file(app, blobs, target, lease, delta, NoProgress())
        return delta

    def done(target: Row[Any], delta: DeleteSummary) -> None:
        summary.add(delta)
        progress.advance(STEP, 2 * (target.row_count or 0), files=1)

    def name(target: Row[Any]) -> str:
        return lease_name(target.request_id)

    lease_seconds = app.settings.archival.lease_seconds
    workers = worker_count(app.settings.archival.workers, len(targets))
    if workers == 1:
        claims = Claimer[Row[Any]](app, name, lease_seconds).run(targets, work)
    else:
        claims = run_pool(
            app, targets, name=name, lease_seconds=lease_seconds, workers=workers, work=child_work, done=done
        )
    summary.held, summary.lost = claims.held, claims.lost
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _work_file(
    app: App, blobs: ObjectStore, target: Row[Any], lease: Lease, summary: DeleteSummary, progress: Progress
) -> None:
    """Verify and delete one claimed archive unless another run deleted it meanwhile."""
    with app.store.read() as conn:  # again, under the lease: another run may have deleted it meanwhile
        fresh = conn.execute(deletion_targets_query().where(_m.request_id == target.request_id)).first()
    if fresh is None or fresh.blob_url != target.blob_url:
        progress.advance(STEP, 2 * (target.row_count or 0), files=1)
        return
    _delete_file(app, blobs, fresh, summary, progress, lease)


def _open_rows(blobs: ObjectStore, key: str, target: Row[Any]) -> Iterator[tuple[ar.ArchivedRow, ar.ArchiveReader]]:
    """The file's rows with their reader; a row of another batch refuses the file."""
    with blobs.open_read(key) as f:
        reader = ar.ArchiveReader(f, questions=False)  # deletion needs keys and scores only
        for row in reader:
            if (row.course_id, row.batch_id) != (target.collection_id, target.batch_id):
                raise DeletionRefused(
                    f"row {reader.rows} belongs to batch {row.batch_id!r} of {row.course_id!r}, "
                    f"not {target.batch_id!r} of {target.collection_id!r}"
                )
            yield row, reader


def _verify(target: Row[Any], digest: ac.ArchiveDigest) -> None:
    if target.row_count is not None and digest.rows != target.row_count:
        raise DeletionRefused(f"the archive holds {digest.rows} rows, {target.row_count} were recorded")
    if target.checksum is not None and digest.checksum != target.checksum:
        raise DeletionRefused(f"checksum mismatch: the archive is {digest.checksum}, {target.checksum} was recorded")


def _delete_file(
    app: App, blobs: ObjectStore, target: Row[Any], summary: DeleteSummary, progress: Progress, lease: Lease
) -> None:
    now = app.clock()  # docs/reference/data-model.md#c2: once per file
    key = (target.blob_url or [None])[0]
    advanced = 0
    try:
        if not key:
            raise DeletionRefused("no blob_url recorded")
        try:
            blobs.path(key)
        except ValueError as exc:
            raise DeletionRefused(str(exc)) from None
        with blobs.open_read(key) as f:
            if target.checksum is not None:
                # The very bytes written at archival, so its rows and row count: checked without parsing them
                # (the row count is checked again while deleting, before the last commit).
                digest = ac.ArchiveDigest(target.row_count or 0, ar.read_checksum(f))
            else:  # archived without a checksum (before revision 0003, or imported): parse every line
                digest = ar.read_digest(f)
        progress.advance(STEP, target.row_count or 0)
        advanced += target.row_count or 0
        _verify(target, digest)
        advanced += _delete_groups(app, blobs, key, target, digest, now, summary, progress, lease)
    except (DeletionRefused, ar.ArchiveFormatError, ObjectStoreError, OSError) as exc:
        reason = shorten(str(exc) if isinstance(exc, DeletionRefused | ObjectStoreError) else _describe(exc))
        with app.store.write() as conn:
            lease.fence(conn)
            conn.execute(
                archival_metadata.update()
                .where(_m.request_id == target.request_id)
                .values(
                    deletion_status=FAILED,
                    err_message=reason,
                    iteration=func.coalesce(_m.iteration, 0) + 1,
                    archival_date=now,
                )
            )
        summary.failed += 1
        summary.failures.append(
            {
                "requestId": target.request_id,
                "collectionId": target.collection_id,
                "batchId": target.batch_id,
                "blobUrl": key,
                "error": reason,
            }
        )
    else:
        summary.deleted += 1
    progress.advance(STEP, max(2 * (target.row_count or 0) - advanced, 0), files=1)


def _describe(exc: BaseException) -> str:
    """The stored reason: the error type for I/O errors; one ``corrupt archive`` prefix for archive errors."""
    text = str(exc)
    if not isinstance(exc, ar.ArchiveFormatError):
        return f"{type(exc).__name__}: {text}"
    return text if text.startswith(ar.CORRUPT) else f"{ar.CORRUPT}: {text}"


def _learner_groups(
    rows: Iterator[tuple[ar.ArchivedRow, ar.ArchiveReader]], size: int
) -> Iterator[tuple[list[ar.ArchivedRow], ar.ArchiveReader | None, bool]]:
    """Groups of about ``size`` rows that never split a learner's consecutive rows; the last is flagged.

    Rows are sorted by user in files this job writes; a learner whose rows are spread out is recomputed once
    per group, which is still safe (each group's recompute holds every row that group deletes).
    """
    group: list[ar.ArchivedRow] = []
    reader: ar.ArchiveReader | None = None
    for row, reader in rows:
        if group and ((len(group) >= size and row.user_id != group[-1].user_id) or len(group) >= 4 * size):
            yield group, reader, False
            group = []
        group.append(row)
    yield group, reader, True  # the reader is exhausted here: its digest can be checked before the last commit


def _delete_groups(
    app: App,
    blobs: ObjectStore,
    key: str,
    target: Row[Any],
    verified: ac.ArchiveDigest,
    now: int,
    summary: DeleteSummary,
    progress: Progress,
    lease: Lease,
) -> int:
    """The second pass: one transaction per learner group; the last also marks the deletion done."""
    advanced = 0
    s = app.settings
    for group, reader, last in _learner_groups(_open_rows(blobs, key, target), s.archival.chunk_rows):
        if last and reader is not None:
            # Checked before the last commit: this pass read the verified bytes, and as many rows as recorded.
            rows = target.row_count if target.row_count is not None else verified.rows
            if reader.digest.checksum != verified.checksum or reader.rows != rows:
                raise DeletionRefused(f"the archive changed while it was being deleted ({reader.rows} rows read)")
        extra: dict[Learner, list[AttemptRecord]] = {}
        keys = []
        for r in group:
            extra.setdefault((r.course_id, r.batch_id, r.user_id), []).append(
                AttemptRecord(
                    r.attempt_id, r.content_id, r.total_score or 0.0, r.total_max_score or 0.0, r.last_attempted_on
                )
            )
            if r.updated_on is not None:
                keys.append((r.user_id, r.course_id, r.batch_id, r.content_id, r.attempt_id, r.updated_on))
        lease.check()
        with app.store.write() as conn:
            lease.fence(conn)
            users = recompute_scores(
                conn, app.store.dialect, extra, settings=s.assessment, legacy=s.legacy, now=now, extra=extra
            )
            deleted = delete_archived(conn, keys)
            if last:
                conn.execute(
                    archival_metadata.update()
                    .where(_m.request_id == target.request_id)
                    .values(deletion_status=SUCCESS, completion_date=now)
                )
        group_cache.invalidate_for_users(app.store, app.cache, users)  # S6, after commit
        summary.rows_read += len(group)
        summary.rows_deleted += deleted
        summary.rows_kept += len(group) - deleted
        summary.learners += len(extra)
        progress.advance(STEP, len(group))
        advanced += len(group)
    return advanced
