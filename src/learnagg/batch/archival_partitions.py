"""Archive partitions as both engines find, claim and record them (docs/batch.md#assessment-archival).

A run plans its partitions (`plan_run`: those archived or failed too often are counted and left), and for each
claimed one records the key of its file before writing it (`start_partition`) and then the outcome, SUCCESS with
the row count and checksum of the file read back, or FAILED with the reason (`record_outcome`), every write fenced
by the partition's lease. The python engine (`learnagg.batch.archival`) writes files in this process or forked
workers, the spark engine (`learnagg.batch.spark.archival`) in Spark tasks; what they record is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, func, literal_column, select
from sqlalchemy.engine import Row

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.store.batch_leases import Lease, LeaseLost
from learnagg.adapters.store.tables import archival_metadata, assessment_aggregator
from learnagg.app import App
from learnagg.batch.archival_scope import ArchivalScope, resolve_scope
from learnagg.domain import archive_csv as ac

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


def shorten(message: str) -> str:
    """An `err_message`: one line, at most 300 characters."""
    line = " ".join(message.split())
    return line[:ERR_MAX]


def failure_reason(exc: Exception) -> str:
    """The `err_message` of a partition whose file could not be written or read back."""
    return shorten(str(exc) if isinstance(exc, ObjectStoreError) else f"{type(exc).__name__}: {exc}")


def discard(blobs: ObjectStore, key: str) -> None:
    """Remove a failed partition's file so readers globbing the archive folder never read it."""
    # If this fails too, the next run deletes it through the metadata row's blob_url.
    with suppress(OSError, ObjectStoreError):
        blobs.delete(key)


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


def partition_range(course_id: str, batch_id: str, start: int, end: int) -> Any:
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
                select(func.count()).where(partition_range(course_id, batch_id, periods[0].start, periods[0].end))
            ).scalar_one()
            for period, rows in zip(periods, (first, int(count) - first), strict=True):
                if rows:
                    found.append(Partition(course_id, batch_id, period, rows))
    return sorted(found, key=lambda p: (p.course_id, p.batch_id, p.period))


def lease_name(unit: Partition | str) -> str:
    """The lease of a partition (archive mode) and of its archive (delete mode): one name for both."""
    return f"archival:{unit.request_id if isinstance(unit, Partition) else unit}"


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


def identity(part: Partition) -> dict[str, Any]:
    """The metadata columns that name a partition (the rest record its state)."""
    p = part.period
    return {
        "request_id": part.request_id,
        "batch_id": part.batch_id,
        "collection_id": part.course_id,
        "resource_type": ac.RESOURCE_TYPE,
        "job_id": ac.JOB_ID,
        "request_data": ac.request_data(part.course_id, part.batch_id, p.year, p.week),
    }


# -- a run -----------------------------------------------------------------------------------------------------


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


def skipped(meta: Row[Any] | None, summary: ArchiveSummary) -> bool:
    """Whether a partition with this metadata row is left alone (archived, or failed too often); counts it."""
    if meta is not None and meta.archival_status == SUCCESS:
        summary.skipped_archived += 1
        return True
    if meta is not None and (meta.iteration or 0) >= MAX_ITERATIONS:
        summary.skipped_iterations += 1
        return True
    return False


def plan_run(
    app: App, blobs: ObjectStore, scope: ArchivalScope | None, cutoff: int | None
) -> tuple[ArchiveSummary, list[Partition]]:
    """The partitions in scope still to archive, and the run's summary with those left alone counted.

    Raises:
        InputError: an unknown batch in the scope (nothing done).
        ObjectStoreError: the object store cannot be used at all (nothing done).
    """
    with app.store.read() as conn:
        pairs = resolve_scope(conn, scope or ArchivalScope())
        partitions = find_partitions(conn, pairs, cutoff)
        stored = load_metadata(conn, (p.request_id for p in partitions))
    blobs.check()
    summary = ArchiveSummary(partitions=len(partitions))
    return summary, [p for p in partitions if not skipped(stored.get(p.request_id), summary)]


def new_key(app: App, part: Partition) -> tuple[str, int]:
    """The object key of the partition's file and the upload time it names (docs/reference/data-model.md#c2: the
    clock is read once per partition)."""
    now = app.clock()
    p = part.period
    return ac.archive_key(app.settings.archival.prefix, part.batch_id, part.course_id, p.year, p.week, now), now


def start_partition(
    app: App, blobs: ObjectStore, part: Partition, meta: Row[Any] | None, lease: Lease, key: str
) -> None:
    """Make room for the partition's new file under its lease.

    A previous attempt's file (unfinished, failed verification, or never marked SUCCESS) goes first, while the
    metadata row still points at it; then the row records the new key before it is written. A run killed at any
    point leaves every file it wrote named by the row, so the next run removes it.

    Raises:
        LeaseLost: another run holds the partition now.
        OSError, ObjectStoreError: the old file could not be removed.
    """
    stale = (meta.blob_url or [None])[0] if meta is not None else None
    lease.check()
    if stale and stale != key:
        blobs.delete(stale)
    with app.store.write() as conn:
        lease.fence(conn)
        upsert_metadata(conn, app, {**identity(part), "blob_url": [key]})
    blobs.delete(key)  # the same key again (a repeated clock reading): start afresh


@dataclass(frozen=True, slots=True)
class Outcome:
    """What writing one partition's file gave: its rows, checksum and size, or the reason it failed."""

    rows: int = 0
    checksum: str | None = None
    size: int = 0
    reason: str | None = None


def record_outcome(
    app: App,
    blobs: ObjectStore,
    part: Partition,
    lease: Lease,
    key: str,
    now: int,
    outcome: Outcome,
    summary: ArchiveSummary,
) -> None:
    """Record a partition's outcome under its lease, SUCCESS or FAILED (which counts an iteration), and count it.

    Raises:
        LeaseLost: another run holds the partition now; this run's file is removed (the new holder writes under a
            later key) and nothing is recorded or counted.
    """
    values = {**identity(part), "archival_date": now}
    if outcome.reason is not None:
        values.update(archival_status=FAILED, err_message=outcome.reason)
    else:
        values.update(archival_status=SUCCESS, blob_url=[key], row_count=outcome.rows, checksum=outcome.checksum)
    try:
        with app.store.write() as conn:
            lease.fence(conn)
            upsert_metadata(conn, app, values, count_failure=outcome.reason is not None)
    except LeaseLost:
        discard(blobs, key)
        raise
    if outcome.reason is not None:
        summary.failed += 1
        summary.failures.append({**part.label(), "requestId": part.request_id, "error": outcome.reason})
    else:
        summary.archived += 1
        summary.rows += outcome.rows
        summary.bytes += outcome.size
