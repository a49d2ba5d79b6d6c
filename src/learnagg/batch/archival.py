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
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Row

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import Lease, LeaseLost
from learnagg.adapters.store.raw_cursor import raw_chunks
from learnagg.adapters.store.tables import assessment_aggregator
from learnagg.app import App
from learnagg.batch.archival_partitions import (
    STEP,
    ArchiveSummary,
    Outcome,
    Partition,
    discard,
    failure_reason,
    lease_name,
    load_metadata,
    new_key,
    partition_range,
    plan_run,
    record_outcome,
    skipped,
    start_partition,
)
from learnagg.batch.archival_pool import run_pool, worker_count
from learnagg.batch.archival_scope import ArchivalScope, resolve_scope, scope_filter
from learnagg.batch.claims import Claimer
from learnagg.batch.progress import NoProgress, Progress
from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar
from learnagg.domain.archive_chunks import archive_lines

__all__ = ["ArchivalScope", "ArchiveSummary", "resolve_scope", "run_archive", "scope_filter"]

_a = assessment_aggregator.c


def _orjson_dumps(value: Any) -> str:
    # Same text as json.dumps(separators=(",", ":"), ensure_ascii=False) for stored questions, several times faster.
    return orjson.dumps(value).decode()


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
    summary, todo = plan_run(app, blobs, scope, None if before is None else ac.period_cutoff(before))
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
    if skipped(meta, summary):
        progress.advance(STEP, part.rows, files=1)
    else:
        _archive_partition(app, blobs, part, meta, summary, progress, lease)


def _archive_partition(
    app: App,
    blobs: ObjectStore,
    part: Partition,
    meta: Row[Any] | None,
    summary: ArchiveSummary,
    progress: Progress,
    lease: Lease,
) -> None:
    key, now = new_key(app, part)
    advanced = 0

    def on_rows(n: int) -> None:
        nonlocal advanced
        advanced += n
        progress.advance(STEP, n)
        lease.check()  # a run that lost its lease stops writing at once

    try:
        start_partition(app, blobs, part, meta, lease, key)
        digest = _write_partition(app, blobs, part, key, on_rows)
        with blobs.open_read(key) as f:
            # docs/batch.md#assessment-archival, read back: the same uncompressed bytes mean the same rows, so the same
            # count.
            check = ar.read_checksum(f)
        if check != digest.checksum:
            raise ValueError(f"read back a different file: checksum {check}, wrote {digest.checksum}")
        outcome = Outcome(digest.rows, digest.checksum, blobs.size(key))
    except LeaseLost:
        discard(blobs, key)  # its own file only: the new holder writes under a later key
        raise
    except (OSError, ValueError, ObjectStoreError) as exc:
        discard(blobs, key)
        outcome = Outcome(reason=failure_reason(exc))
    record_outcome(app, blobs, part, lease, key, now, outcome, summary)
    progress.advance(STEP, max(part.rows - advanced, 0), files=1)


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
    stmt = select(*columns).where(partition_range(part.course_id, part.batch_id, p.start, p.end)).order_by(*order)
    chunk = app.settings.archival.chunk_rows
    with app.store.read() as conn, blobs.open_write(key) as out:
        writer = ac.ArchiveWriter(out, dumps=_orjson_dumps, loads=orjson.loads)
        for rows in raw_chunks(conn, stmt, chunk):
            writer.write_lines(archive_lines(rows, _orjson_dumps, orjson.loads), len(rows))
            on_rows(len(rows))
        return writer.close()
