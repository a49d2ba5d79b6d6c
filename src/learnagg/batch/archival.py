"""Assessment archival, archive mode (docs/batch.md#assessment-archival): one gzipped CSV per (course, batch, year,
week), recorded in `archival_metadata` with its row count and checksum.

Crash safety: before a partition is uploaded its metadata row records the key it is about to write (status
unchanged: null or FAILED). A process killed during the upload leaves that row and at most an unfinished
``.part`` upload (local) that readers never see; the next run deletes whatever the row points at and archives
the partition again under a new key. Only a file that was read back and matched is marked SUCCESS.

Concurrency: each partition is claimed with an expiring lease (`batch_lease`, `archival.lease_seconds`) before
its metadata is read again and anything is uploaded; every metadata write is fenced by the lease, so runs started
together on any number of machines archive each partition exactly once (docs/batch.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import BigInteger, Connection, Text, and_, cast, func, literal_column, select
from sqlalchemy.engine import Row

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import Lease, LeaseLost
from learnagg.adapters.store.raw_cursor import raw_chunks
from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator
from learnagg.app import App
from learnagg.batch.archival_pool import run_pool, worker_count
from learnagg.batch.archival_scope import ArchivalScope, resolve_scope, scope_filter
from learnagg.batch.claims import Claimer
from learnagg.batch.progress import NoProgress, Progress
from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar
from learnagg.domain.archive_chunks import archive_lines

__all__ = ["ArchivalScope", "ArchiveSummary", "resolve_scope", "run_archive", "scope_filter"]

# docs/batch.md#assessment-archival: partitions (and deletions) that failed this often are left alone
MAX_ITERATIONS = 3
SUCCESS = "SUCCESS"
FAILED = "FAILED"
ERR_MAX = 300  # `err_message` holds at most 300 characters (docs/reference/data-model.md#reports-and-archival)
STEP = "archive"  # the step an archive run reports progress under

_m = archival_metadata.c
_a = assessment_aggregator.c
# The Monday-to-Monday week of updated_on, as ac.week_bucket computes it. Inline integers, so the GROUP BY
# repeats exactly the selected expression (PostgreSQL refuses two differently bound copies).
_BUCKET = literal_column(f"({_a.updated_on.name} + {ac.WEEK_SHIFT_MS}) / {ac.WEEK_MS}", BigInteger)


def _orjson_dumps(value: Any) -> str:
    # Same text as json.dumps(separators=(",", ":"), ensure_ascii=False) for stored questions, several times faster.
    return orjson.dumps(value).decode()


def shorten(message: str) -> str:
    """An `err_message`: one line, at most 300 characters."""
    line = " ".join(message.split())
    return line[:ERR_MAX]


# -- partitions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    """One (course, batch, year, week) group of `assessment_aggregator` rows and its updated_on range."""

    course_id: str
    batch_id: str
    period: ac.Period
    rows: int

    @property
    def request_id(self) -> str:
        """``MD5U("assessment-archival:<collectionId>:<batchId>:<year>:<week>")``."""
        return ac.request_id(self.course_id, self.batch_id, self.period.year, self.period.week)

    def label(self) -> dict[str, Any]:
        """The partition as a JSON-ready dict (for summaries)."""
        p = self.period
        return {"collectionId": self.course_id, "batchId": self.batch_id, "year": p.year, "week": p.week}


def _range(course_id: str, batch_id: str, start: int, end: int) -> Any:
    return and_(_a.course_id == course_id, _a.batch_id == batch_id, _a.updated_on >= start, _a.updated_on < end)


def find_partitions(conn: Connection, pairs: list[tuple[str, str]] | None, cutoff: int | None) -> list[Partition]:
    """Every non-empty partition in scope with rows updated before ``cutoff`` (a partition boundary).

    One GROUP BY per batch (or one in all) counts rows per week; a week holding 1 January is split by a count
    of one side (docs/batch.md#assessment-archival: the year is the calendar year).
    """
    base = [_a.updated_on.is_not(None), _a.updated_on >= -ac.WEEK_SHIFT_MS]  # integer division = floor from here
    if cutoff is not None:
        base.append(_a.updated_on < cutoff)
    stmt = select(_a.course_id, _a.batch_id, _BUCKET, func.count()).group_by(_a.course_id, _a.batch_id, _BUCKET)
    queries = (
        [stmt.where(*base)]
        if pairs is None
        else [stmt.where(*base, _a.course_id == c, _a.batch_id == b) for c, b in pairs]
    )
    found: list[Partition] = []
    for query in queries:
        for course_id, batch_id, bucket, count in conn.execute(query):
            periods = [p for p in ac.bucket_periods(int(bucket)) if cutoff is None or p.start < cutoff]
            if len(periods) == 1:
                found.append(Partition(course_id, batch_id, periods[0], int(count)))
                continue
            first = conn.execute(
                select(func.count()).where(_range(course_id, batch_id, periods[0].start, periods[0].end))
            ).scalar_one()
            for period, rows in zip(periods, (first, int(count) - first), strict=True):
                if rows:
                    found.append(Partition(course_id, batch_id, period, rows))
    return sorted(found, key=lambda p: (p.course_id, p.batch_id, p.period))


# -- metadata ------------------------------------------------------------------------------------------------


def load_metadata(conn: Connection, request_ids: Iterable[str]) -> dict[str, Row[Any]]:
    """The `archival_metadata` rows of the given request ids."""
    ids = sorted(set(request_ids))
    out: dict[str, Row[Any]] = {}
    for i in range(0, len(ids), 500):
        for row in conn.execute(select(archival_metadata).where(_m.request_id.in_(ids[i : i + 500]))):
            out[row.request_id] = row
    return out


def upsert_metadata(conn: Connection, app: App, values: dict[str, Any], *, count_failure: bool = False) -> None:
    """Insert or update one `archival_metadata` row; ``count_failure`` adds 1 to its iteration
    (docs/batch.md#assessment-archival)."""
    stmt = app.store.dialect.insert(archival_metadata).values(iteration=1 if count_failure else 0, **values)
    updates: dict[str, Any] = {k: stmt.excluded[k] for k in values if k != "request_id"}
    if count_failure:
        updates["iteration"] = func.coalesce(_m.iteration, 0) + 1
    conn.execute(stmt.on_conflict_do_update(index_elements=["request_id"], set_=updates))


def _identity(part: Partition) -> dict[str, Any]:
    p = part.period
    return {
        "request_id": part.request_id,
        "batch_id": part.batch_id,
        "collection_id": part.course_id,
        "resource_type": ac.RESOURCE_TYPE,
        "job_id": ac.JOB_ID,
        "request_data": ac.request_data(part.course_id, part.batch_id, p.year, p.week),
    }


# -- archive mode --------------------------------------------------------------------------------------------


@dataclass
class ArchiveSummary:
    """What an archive run did (the `--json` object)."""

    partitions: int = 0
    archived: int = 0
    skipped_archived: int = 0
    skipped_iterations: int = 0
    failed: int = 0
    held: int = 0  # claimed by another run that kept working on them: that run finishes them
    lost: int = 0  # taken over by another run while this one worked on them
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {"mode": "archive", **asdict(self)}

    def add(self, other: ArchiveSummary) -> None:
        """Count what another process did for this run (its partitions are already counted here)."""
        for name in ("archived", "skipped_archived", "skipped_iterations", "failed", "rows", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)


def run_archive(
    app: App,
    blobs: ObjectStore,
    scope: ArchivalScope | None = None,
    *,
    before: int | None = None,
    progress: Progress | None = None,
) -> ArchiveSummary:
    """Archive every partition in scope that is not archived yet (docs/batch.md#assessment-archival archive mode).

    Args:
        app: the application (store, clock, settings `archival.*`).
        blobs: where archives go.
        scope: the batches; all when None.
        before: archive only whole partitions that end at or before this instant (epoch ms).
        progress: told the step ``archive`` (rows and files to write), then each partition's rows and file.

    Raises:
        InputError: an unknown batch in the scope (nothing done).
        ObjectStoreError: the object store cannot be used at all (nothing done).
    """
    started = time.perf_counter()
    progress = progress or NoProgress()
    cutoff = None if before is None else ac.period_cutoff(before)
    with app.store.read() as conn:
        pairs = resolve_scope(conn, scope or ArchivalScope())
        partitions = find_partitions(conn, pairs, cutoff)
        stored = load_metadata(conn, (p.request_id for p in partitions))
    blobs.check()
    summary = ArchiveSummary(partitions=len(partitions))
    todo: list[Partition] = []
    for part in partitions:
        meta = stored.get(part.request_id)
        if meta is not None and meta.archival_status == SUCCESS:
            summary.skipped_archived += 1
        elif meta is not None and (meta.iteration or 0) >= MAX_ITERATIONS:
            summary.skipped_iterations += 1
        else:
            todo.append(part)
    progress.start(STEP, sum(p.rows for p in todo), files=len(todo))

    def work(part: Partition, lease: Lease) -> None:
        _work_partition(app, blobs, part, lease, summary, progress)

    def child_work(part: Partition, lease: Lease) -> ArchiveSummary:
        delta = ArchiveSummary()
        _work_partition(app, blobs, part, lease, delta, NoProgress())
        return delta

    def done(part: Partition, delta: ArchiveSummary) -> None:
        summary.add(delta)
        progress.advance(STEP, part.rows, files=1)

    lease_seconds = app.settings.archival.lease_seconds
    workers = worker_count(app.settings.archival.workers, len(todo))
    if workers == 1:
        claims = Claimer[Partition](app, lease_name, lease_seconds).run(todo, work)
    else:
        claims = run_pool(
            app, todo, name=lease_name, lease_seconds=lease_seconds, workers=workers, work=child_work, done=done
        )
    summary.held, summary.lost = claims.held, claims.lost
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _work_partition(
    app: App, blobs: ObjectStore, part: Partition, lease: Lease, summary: ArchiveSummary, progress: Progress
) -> None:
    """Archive one claimed partition unless another run archived it meanwhile."""
    with app.store.read() as conn:  # again, under the lease: another run may have archived it meanwhile
        meta = load_metadata(conn, [part.request_id]).get(part.request_id)
    if meta is not None and meta.archival_status == SUCCESS:
        summary.skipped_archived += 1
    elif meta is not None and (meta.iteration or 0) >= MAX_ITERATIONS:
        summary.skipped_iterations += 1
    else:
        _archive_partition(app, blobs, part, meta, summary, progress, lease)
        return
    progress.advance(STEP, part.rows, files=1)


def lease_name(unit: Partition | str) -> str:
    """The lease of a partition (archive mode) and of its archive (delete mode): one name for both."""
    return f"archival:{unit.request_id if isinstance(unit, Partition) else unit}"


def _archive_partition(
    app: App,
    blobs: ObjectStore,
    part: Partition,
    meta: Row[Any] | None,
    summary: ArchiveSummary,
    progress: Progress,
    lease: Lease,
) -> None:
    now = app.clock()  # docs/reference/data-model.md#c2: once per partition; also the file's epochMillis
    p = part.period
    key = ac.archive_key(app.settings.archival.prefix, part.batch_id, part.course_id, p.year, p.week, now)
    identity = _identity(part)
    # A previous attempt's file (unfinished, failed verification, or never marked SUCCESS) goes first, while
    # the metadata row still points at it; then the row records the new key before it is written. A run killed
    # at any point leaves every file it wrote named by the row, so the next run removes it.
    stale = (meta.blob_url or [None])[0] if meta is not None else None
    advanced = 0

    def on_rows(n: int) -> None:
        nonlocal advanced
        advanced += n
        progress.advance(STEP, n)
        lease.check()  # a run that lost its lease stops writing at once

    try:
        lease.check()
        if stale and stale != key:
            blobs.delete(stale)
        with app.store.write() as conn:
            lease.fence(conn)
            upsert_metadata(conn, app, {**identity, "blob_url": [key]})
        blobs.delete(key)  # the same key again (a repeated clock reading): start afresh
        digest = _write_partition(app, blobs, part, key, on_rows)
        with blobs.open_read(key) as f:
            # docs/batch.md#assessment-archival, read back: the same uncompressed bytes mean the same rows, so the same
            # count.
            check = ar.read_checksum(f)
        if check != digest.checksum:
            raise ValueError(f"read back a different file: checksum {check}, wrote {digest.checksum}")
        size = blobs.size(key)
    except LeaseLost:
        _discard(blobs, key)  # its own file only: the new holder writes under a later key
        raise
    except (OSError, ValueError, ObjectStoreError) as exc:
        reason = shorten(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ObjectStoreError) else str(exc))
        _discard(blobs, key)
        with app.store.write() as conn:
            lease.fence(conn)
            upsert_metadata(
                conn,
                app,
                {**identity, "archival_status": FAILED, "err_message": reason, "archival_date": now},
                count_failure=True,
            )
        summary.failed += 1
        summary.failures.append({**part.label(), "requestId": part.request_id, "error": reason})
        progress.advance(STEP, max(part.rows - advanced, 0), files=1)
        return
    with app.store.write() as conn:
        try:
            lease.fence(conn)
        except LeaseLost:
            _discard(blobs, key)
            raise
        upsert_metadata(
            conn,
            app,
            {
                **identity,
                "archival_status": SUCCESS,
                "archival_date": now,
                "blob_url": [key],
                "row_count": digest.rows,
                "checksum": digest.checksum,
            },
        )
    summary.archived += 1
    summary.rows += digest.rows
    summary.bytes += size
    progress.advance(STEP, max(part.rows - advanced, 0), files=1)


def _discard(blobs: ObjectStore, key: str) -> None:
    """Remove a failed partition's file so readers globbing the archive folder never read it."""
    # If this fails too, the next run deletes it through the metadata row's blob_url.
    with suppress(OSError, ObjectStoreError):
        blobs.delete(key)


def _write_partition(
    app: App, blobs: ObjectStore, part: Partition, key: str, on_rows: Callable[[int], None]
) -> ac.ArchiveDigest:
    """Stream the partition's rows, sorted by (user_id, content_id, attempt_id), into a gzipped CSV."""
    p = part.period
    order: list[Any] = [_a.user_id, _a.content_id, _a.attempt_id]
    # docs/reference/data-model.md#c6: code-point order, whatever the database's collation
    if app.store.backend == "postgresql":
        order = [c.collate("C") for c in order]
    # The question as its stored JSON text, rendered chunk by chunk (archive_chunks.archive_lines).
    columns = [_a[c] for c in ac.COLUMNS[:-1]] + [cast(_a.question, Text)]
    stmt = select(*columns).where(_range(part.course_id, part.batch_id, p.start, p.end)).order_by(*order)
    chunk = app.settings.archival.chunk_rows
    with app.store.read() as conn, blobs.open_write(key) as out:
        writer = ac.ArchiveWriter(out, dumps=_orjson_dumps, loads=orjson.loads)
        for rows in raw_chunks(conn, stmt, chunk):
            writer.write_lines(archive_lines(rows, _orjson_dumps, orjson.loads), len(rows))
            on_rows(len(rows))
        return writer.close()
