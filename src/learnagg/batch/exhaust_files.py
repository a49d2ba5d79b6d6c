"""Exhaust report files (docs/batch.md#exhaust-reports): a batch's CSV streamed to the object store, then zipped (and
protected)."""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import orjson

from learnagg.adapters.objectstore import ObjectStore, ObjectStoreError
from learnagg.adapters.zipfiles import Encryption, write_zip
from learnagg.app import App
from learnagg.batch.progress_exhaust import write_progress_report
from learnagg.batch.response_exhaust import write_response_report
from learnagg.domain import archive_read as ar
from learnagg.domain import exhaust as dx
from learnagg.domain.dates import zone
from learnagg.errors import LearnaggError, NotFound, first_line


class BatchError(LearnaggError):
    """One batch of a request could not be produced; the message goes to the request's `err_message`."""


class ArchiveUnreadable(BatchError):
    """An archived file of the batch cannot be read (docs/batch.md#exhaust-reports sources): the response report is not
    made."""


def report_time(now: int, zone_name: str) -> datetime:
    """``now`` in setting ``report.timezone``: it dates report files and their names (docs/reference/data-model.md#c3,
    docs/batch.md#exhaust-reports)."""
    return datetime.fromtimestamp(now / 1000, zone(zone_name))


def archive_pattern(prefix: str, batch_id: str, course_id: str) -> str:
    """``<archival.prefix><batchId>_<collectionId>/*-*-*.csv.gz`` (docs/batch.md#exhaust-reports sources)."""
    return f"{prefix}{batch_id}_{course_id}/*-*-*.csv.gz"


def _archived_dict(row: ar.ArchivedRow) -> dict[str, Any]:
    question = orjson.loads(row.question) if row.question else None
    if question is not None and not isinstance(question, list):
        raise ValueError("question is not a JSON array")
    return {
        "course_id": row.course_id,
        "batch_id": row.batch_id,
        "user_id": row.user_id,
        "content_id": row.content_id,
        "attempt_id": row.attempt_id,
        "created_on": row.created_on,
        "grand_total": row.grand_total,
        "last_attempted_on": row.last_attempted_on,
        "total_max_score": row.total_max_score,
        "total_score": row.total_score,
        "updated_on": row.updated_on,
        "question": question,
    }


def archived_rows(blobs: ObjectStore, prefix: str, batch_id: str, course_id: str) -> Iterator[dict[str, Any]]:
    """The archived attempts of a batch as the response report takes them, file after file.

    Raises (while iterating):
        ArchiveUnreadable: naming the file that is missing, not gzip, truncated or malformed.
    """
    for key in blobs.glob(archive_pattern(prefix, batch_id, course_id)):
        try:
            with blobs.open_read(key) as f:
                for row in ar.ArchiveReader(f):
                    yield _archived_dict(row)
        except (ValueError, ObjectStoreError, OSError, EOFError) as exc:  # ArchiveFormatError is a ValueError
            raise ArchiveUnreadable(f"Archived file {key} cannot be read: {first_line(exc)}") from exc


def write_report(
    app: App, blobs: ObjectStore, job_id: str, batch_id: str, course_id: str, out: TextIO, channel: str | None
) -> int:
    """Write one batch's report CSV (progress or response, by dataset) to ``out``; returns the data rows.

    Raises:
        BatchError: the batch does not exist, or one of its archived files cannot be read.
    """
    try:
        if dx.REPORT_KEYS[job_id] == "progress":
            return write_progress_report(app, batch_id, out, channel=channel)
        archived = archived_rows(blobs, app.settings.archival.prefix, batch_id, course_id)
        return write_response_report(app, batch_id, out, archived=archived, channel=channel)
    except NotFound:
        raise BatchError(f"Batch {batch_id} does not exist") from None


# `write_report` or an engine's equivalent (docs/spark.md): the same arguments, the same CSV.
ReportWriter = Callable[[App, ObjectStore, str, str, str, TextIO, str | None], int]


@dataclass(frozen=True, slots=True)
class BatchFile:
    """A produced file: the zip's object key, its size in bytes and the report's data rows."""

    key: str
    size: int
    rows: int


def produce_batch(
    app: App,
    blobs: ObjectStore,
    *,
    job_id: str,
    request_id: str,
    batch_id: str,
    course_id: str,
    channel: str | None,
    now: int,
    password: str | None,
    encryption: Encryption,
    write: ReportWriter = write_report,
) -> BatchFile:
    """docs/batch.md#exhaust-reports: the CSV streamed to ``<job_id>/<request_id>/<batchId>_<key>_<yyyyMMdd>.csv``,
    zipped next to it (one entry named after the CSV; protected when a password is given), then the CSV removed.

    The clear CSV does not outlive its zip: left beside a password-protected zip it would defeat the password.
    A failure leaves no object behind but, at worst, a CSV that the next attempt overwrites.

    Raises:
        BatchError: the batch does not exist, or an archived file cannot be read.
        ObjectStoreError: the object store failed.
    """
    local = report_time(now, app.settings.report.timezone)
    csv_key = dx.report_file(job_id, request_id, batch_id, local.strftime("%Y%m%d"))
    zip_key = csv_key[: -len(".csv")] + ".zip"
    with blobs.open_write(csv_key) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        try:
            rows = write(app, blobs, job_id, batch_id, course_id, text, channel)
            text.flush()
        finally:
            text.detach()  # the object store closes the raw stream itself
    try:
        size = blobs.size(csv_key)
        with blobs.open_read(csv_key) as source, blobs.open_write(zip_key) as out:
            write_zip(
                source,
                out,
                posixpath.basename(csv_key),
                size=size,
                modified=local.replace(tzinfo=None),
                password=password,
                encryption=encryption,
            )
    finally:
        blobs.delete(csv_key)
    return BatchFile(zip_key, blobs.size(zip_key), rows)
