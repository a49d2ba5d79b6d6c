"""Course administration: hierarchy load and read, batch create, update and read
(docs/reference/data-model.md#enrolment, docs/reference/data-model.md#hierarchy, docs/api.md#platform-data)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import course, course_batch
from learnagg.app import App
from learnagg.domain.dates import format_date, start_of_day_ms, today
from learnagg.domain.identity import Caller
from learnagg.domain.platform import NewBatch, batch_dates_refusal, cert_templates, default_batch_status
from learnagg.errors import ApiError, api_error
from learnagg.services import activity_agg
from learnagg.services.identity import require_admin


class ItemRefused(ApiError):
    """The refusal of one item of a bulk write; ``index`` is its position, so the CLI can name the line."""

    def __init__(self, index: int, error: ApiError) -> None:
        """Wrap ``error`` (its code, message and status answer the API unchanged)."""
        super().__init__(error.code, error.message, error.status)
        self.index = index


# --- batches -----------------------------------------------------------------------------------------------------


def _day_ms(day: date | None, zone: str) -> int | None:
    # A batch date is stored as the start of that day in setting `timezone`.
    return None if day is None else start_of_day_ms(day, zone)


def _day(ms: int | None, zone: str) -> date | None:
    return None if ms is None else today(ms, zone)


def create_batches(
    conn: Connection,
    dialect: Dialect,
    batches: Sequence[NewBatch],
    *,
    created_by: str | None,
    now: int,
    zone: str,
    replace: bool = False,
) -> list[str]:
    """Insert batches (or, with ``replace``, upsert them as `learnagg load batches` does); one query per step.

    Args:
        conn: a write transaction.
        dialect: the store dialect.
        batches: the batches; their courses must exist.
        created_by: written to `createdby`.
        now: epoch ms of the request.
        zone: setting `timezone`: the calendar of the dates and of "today" for the default status.
        replace: overwrite a batch of the same course instead of refusing an existing batch id.

    Returns:
        The batch ids.

    Raises:
        ItemRefused: COURSE_NOT_FOUND, an invalid date order, or a batch id that exists (under another course,
            or at all without ``replace``).
    """
    if not batches:
        return []
    # batchId defaults to a new uuid4 (docs/api.md#platform-data)
    ids = [b.batch_id or str(uuid.uuid4()) for b in batches]
    course_ids = {b.course_id for b in batches}
    known = set(conn.execute(select(course.c.course_id).where(course.c.course_id.in_(course_ids))).scalars())
    stmt = select(course_batch.c.batchid, course_batch.c.courseid)
    owners = {r.batchid: r.courseid for r in conn.execute(stmt.where(course_batch.c.batchid.in_(set(ids))))}
    day = today(now, zone)
    rows: dict[str, dict[str, Any]] = {}
    for index, (batch_id, b) in enumerate(zip(ids, batches, strict=True)):
        if b.course_id not in known:
            raise ItemRefused(index, api_error("COURSE_NOT_FOUND"))
        refusal = batch_dates_refusal(b.start_date, b.end_date, b.enrollment_end_date)
        if refusal is not None:
            raise ItemRefused(index, api_error("INVALID_PARAMETER_VALUE", name=refusal[0], value=refusal[1]))
        # batchid is unique on its own (docs/reference/data-model.md#enrolment): only a reload of the same course's
        # batch may replace it.
        owner = owners.get(batch_id)
        if owner is not None and (not replace or owner != b.course_id):
            raise ItemRefused(index, api_error("INVALID_PARAMETER_VALUE", name="batchId", value=batch_id))
        owners[batch_id] = b.course_id
        rows[batch_id] = {
            "courseid": b.course_id,
            "batchid": batch_id,
            "name": b.name,
            "description": b.description,
            "createdby": created_by,
            "enrollmenttype": b.enrollment_type,
            "status": b.status if b.status is not None else default_batch_status(b.start_date, b.end_date, day),
            "start_date": _day_ms(b.start_date, zone),
            "end_date": _day_ms(b.end_date, zone),
            "enrollment_enddate": _day_ms(b.enrollment_end_date, zone),
            "created_date": now,
            "updated_date": now,
            "createdfor": b.created_for,
            "mentors": b.mentors,
            "cert_templates": cert_templates(b.cert_templates),
        }
    if replace:
        columns = [c for c in next(iter(rows.values())) if c not in ("courseid", "batchid", "created_date")]
        conn.execute(dialect.upsert(course_batch, replace=columns, keep=["created_date"]), list(rows.values()))
    else:
        conn.execute(course_batch.insert(), list(rows.values()))
    # A new batch has its `activity_agg` row at once, zeros included (docs/api.md "activity_agg").
    activity_agg.refresh(conn, dialect, [(r["courseid"], r["batchid"]) for r in rows.values()], now)
    return list(rows)


def create_batch(app: App, caller: Caller, batch: NewBatch, now: int) -> dict[str, Any]:
    """``POST /v1/course/batch/create``: admin only; result ``{"batchId"}`` (a new uuid4 unless given)."""
    with app.store.write() as conn:
        require_admin(conn, caller)
        zone = app.settings.timezone
        [batch_id] = create_batches(conn, app.store.dialect, [batch], created_by=caller.user_id, now=now, zone=zone)
    return {"batchId": batch_id}


# Batch-update field → column; date fields are converted to the start of their day.
_UPDATABLE = {
    "name": "name",
    "description": "description",
    "status": "status",
    "endDate": "end_date",
    "enrollmentEndDate": "enrollment_enddate",
    "certTemplates": "cert_templates",
}


def update_batch(
    app: App, caller: Caller, course_id: str, batch_id: str, changes: Mapping[str, Any], now: int
) -> dict[str, Any]:
    """``PATCH /v1/course/batch/update``: admin only; sets the given fields (``certTemplates`` is replaced whole).

    Args:
        app: the application.
        caller: the caller.
        course_id: the batch's course.
        batch_id: the batch.
        changes: the given fields by API name; dates as :class:`datetime.date` (or None to clear).
        now: epoch ms written to `updated_date`.
    """
    zone = app.settings.timezone
    key = (course_batch.c.courseid == course_id) & (course_batch.c.batchid == batch_id)
    with app.store.write() as conn:
        require_admin(conn, caller)
        dates = course_batch.c.start_date, course_batch.c.end_date, course_batch.c.enrollment_enddate
        current = conn.execute(app.store.dialect.lock_for_update(select(*dates).where(key))).first()
        if current is None:
            raise api_error("BATCH_NOT_FOUND")
        start, end, enrollment_end = (_day(ms, zone) for ms in current)
        end = changes.get("endDate", end)
        enrollment_end = changes.get("enrollmentEndDate", enrollment_end)
        refusal = batch_dates_refusal(start, end, enrollment_end)
        if refusal is not None:
            raise api_error("INVALID_PARAMETER_VALUE", name=refusal[0], value=refusal[1])
        values: dict[str, Any] = {"updated_date": now}
        for name, value in changes.items():
            if name in ("endDate", "enrollmentEndDate"):
                value = _day_ms(value, zone)
            elif name == "certTemplates":
                value = cert_templates(value)
            values[_UPDATABLE[name]] = value
        conn.execute(course_batch.update().where(key).values(values))
    return {"response": "SUCCESS"}


def batch_fields(row: Mapping[Any, Any], zone: str) -> dict[str, Any]:
    """A `course_batch` row as the API shows it: dates as ``yyyy-MM-dd``, created/updated as epoch ms."""

    def day(ms: int | None) -> str | None:
        return None if ms is None else format_date(ms, zone)

    return {
        "batchId": row["batchid"],
        "courseId": row["courseid"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "enrollmentType": row["enrollmenttype"],
        "startDate": day(row["start_date"]),
        "endDate": day(row["end_date"]),
        "enrollmentEndDate": day(row["enrollment_enddate"]),
        "createdBy": row["createdby"],
        "createdDate": row["created_date"],
        "updatedDate": row["updated_date"],
        "createdFor": row["createdfor"],
        "mentors": row["mentors"],
        "certTemplates": row["cert_templates"],
    }


def read_batch(app: App, batch_id: str) -> dict[str, Any]:
    """``GET /v1/course/batch/read/{batchId}``: any authenticated user; 404 BATCH_NOT_FOUND."""
    with app.store.read() as conn:
        row = conn.execute(select(course_batch).where(course_batch.c.batchid == batch_id)).mappings().first()
    if row is None:
        raise api_error("BATCH_NOT_FOUND")
    return batch_fields(row, app.settings.timezone)
