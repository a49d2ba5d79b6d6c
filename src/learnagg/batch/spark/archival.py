"""Assessment archival, archive mode, on Spark (docs/spark.md, docs/batch.md#assessment-archival).

The driver finds the partitions, claims them a wave at a time with the same leases and metadata writes as the python
engine (`learnagg.batch.archival`), and runs one Spark job per wave: one task per partition reads the partition's
rows over JDBC, sorts them by (user_id, content_id, attempt_id) in code-point order (Spark compares strings by their
UTF-8 bytes), formats them with the domain's archive writer, writes the file to the object store and reads it back.
The driver receives only each task's row count, checksum and size, and records the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Text, and_, cast, column, select

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import Lease, LeaseLost
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
    plan_run,
    record_outcome,
    skipped,
    start_partition,
)
from learnagg.batch.archival_scope import ArchivalScope
from learnagg.batch.claims import ClaimStats
from learnagg.batch.progress import NoProgress, Progress
from learnagg.batch.spark.session import jdbc_for, spark_session, sql_text
from learnagg.batch.spark.waves import WaveClaimer
from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar
from learnagg.errors import LearnaggError, first_line

_a = assessment_aggregator.c
ORDER = ("user_id", "content_id", "attempt_id")
WAVE_MIN = 64  # partitions per Spark job at least: a job costs about a second whatever its size
# The 12 archived columns, the question as its stored JSON text (parsed row by row by the writer, as in the python
# engine).
_QUERY = select(*(_a[c] for c in ac.COLUMNS[:-1]), cast(_a.question, Text).label("question"))


class SparkJobFailed(LearnaggError):
    """A Spark job of the spark engine failed (the database or an executor could not be used)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """A claimed partition about to be written: its lease, key and upload time."""

    part: Partition
    lease: Lease
    key: str
    now: int


def _dumps(value: Any) -> str:
    # The python engine's encoder: json.dumps(separators=(",", ":"), ensure_ascii=False) text, faster.
    return orjson.dumps(value).decode()


def write_archive(blob_url: str, key: str, rows: Iterable[Any]) -> Outcome:
    """Write one partition's sorted rows to ``key`` and read it back (runs in a Spark task).

    Returns:
        Its rows, checksum and size, or the reason when the file could not be written or read back (then it is
        removed).
    """
    blobs = ObjectStore(blob_url)
    try:
        with blobs.open_write(key) as out:
            writer = ac.ArchiveWriter(out, dumps=_dumps, loads=orjson.loads)
            for row in rows:
                writer.write(row)
            digest = writer.close()
        with blobs.open_read(key) as f:
            check = ar.read_checksum(f)
        if check != digest.checksum:
            raise ValueError(f"read back a different file: checksum {check}, wrote {digest.checksum}")
        size = blobs.size(key)
    except (OSError, ValueError, ObjectStoreError) as exc:
        discard(blobs, key)
        return Outcome(reason=failure_reason(exc))
    return Outcome(digest.rows, digest.checksum, size)


def _task(blob_url: str, keys: list[str]) -> Any:
    def run(index: int, rows: Iterator[Any]) -> Iterator[tuple[int, Outcome]]:
        yield index, write_archive(blob_url, keys[index], rows)

    return run


def blob_location(blobs: ObjectStore) -> str:
    """The object store's URL as executors must open it: a local folder by its absolute path."""
    return blobs.root if blobs.local else blobs.url


def run_archive_spark(
    app: App,
    blobs: ObjectStore,
    scope: ArchivalScope | None = None,
    *,
    before: int | None = None,
    progress: Progress | None = None,
) -> ArchiveSummary:
    """`learnagg.batch.archival.run_archive` on Spark: the same partitions, files, metadata rows and leases.

    Raises:
        ConfigurationError: the store is not PostgreSQL, or Spark cannot start.
        InputError: an unknown batch in the scope (nothing done).
        ObjectStoreError: the object store cannot be used at all (nothing done).
        SparkJobFailed: a Spark job failed (its partitions keep a pending row; the next run redoes them).
    """
    started = time.perf_counter()
    progress = progress or NoProgress()
    jdbc = jdbc_for(app.settings.database_url)
    summary, todo = plan_run(app, blobs, scope, None if before is None else ac.period_cutoff(before))
    progress.start(STEP, sum(p.rows for p in todo), files=len(todo))
    if not todo:
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary
    spark = spark_session(app.settings)
    size = app.settings.spark.wave_partitions or max(WAVE_MIN, 4 * spark.sparkContext.defaultParallelism)
    location = blob_location(blobs)
    query = sql_text(_QUERY)

    def work(wave: list[tuple[Partition, Lease]], stats: ClaimStats) -> None:
        plans = _prepare(app, blobs, wave, summary, progress, stats)
        if not plans:
            return
        predicates = [
            sql_text(
                and_(
                    column("course_id") == p.part.course_id,
                    column("batch_id") == p.part.batch_id,
                    column("updated_on") >= p.part.period.start,
                    column("updated_on") < p.part.period.end,
                )
            )
            for p in plans
        ]
        frame = jdbc.read(spark, query, predicates).sortWithinPartitions(*ORDER)
        try:
            results = dict(frame.rdd.mapPartitionsWithIndex(_task(location, [p.key for p in plans])).collect())
        except Exception as exc:  # a JDBC or executor failure: the pending rows make the next run redo the wave
            raise SparkJobFailed(f"the archive job failed: {first_line(exc)}") from exc
        for i, plan in enumerate(plans):
            _finish(app, blobs, plan, results[i], summary, progress, stats)

    claims = WaveClaimer[Partition](app, lease_name, app.settings.archival.lease_seconds, size).run(todo, work)
    summary.held, summary.lost = claims.held, claims.lost
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _prepare(
    app: App,
    blobs: ObjectStore,
    wave: list[tuple[Partition, Lease]],
    summary: ArchiveSummary,
    progress: Progress,
    stats: ClaimStats,
) -> list[_Plan]:
    """Under each lease: skip what another run finished meanwhile, then remove a previous attempt's file and record
    the new key before anything is written (`archival_partitions.start_partition`, as the python engine does)."""
    with app.store.read() as conn:
        metas = load_metadata(conn, [part.request_id for part, _ in wave])
    plans: list[_Plan] = []
    for part, lease in wave:
        meta = metas.get(part.request_id)
        if skipped(meta, summary):
            progress.advance(STEP, part.rows, files=1)
            continue
        key, now = new_key(app, part)
        plan = _Plan(part, lease, key, now)
        try:
            start_partition(app, blobs, part, meta, lease, key)
        except LeaseLost:
            discard(blobs, key)
            stats.lost += 1
            continue
        except (OSError, ValueError, ObjectStoreError) as exc:  # recorded FAILED, as the python engine does
            discard(blobs, key)
            _finish(app, blobs, plan, Outcome(reason=failure_reason(exc)), summary, progress, stats)
            continue
        plans.append(plan)
    return plans


def _finish(
    app: App,
    blobs: ObjectStore,
    plan: _Plan,
    outcome: Outcome,
    summary: ArchiveSummary,
    progress: Progress,
    stats: ClaimStats,
) -> None:
    """Record one task's outcome under its lease (`archival_partitions.record_outcome`)."""
    try:
        record_outcome(app, blobs, plan.part, plan.lease, plan.key, plan.now, outcome, summary)
    except LeaseLost:
        stats.lost += 1
        return
    progress.advance(STEP, plan.part.rows, files=1)
