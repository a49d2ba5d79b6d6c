"""Enrolment: enrol, unenrol, list, and the bulk load of existing enrolments (docs/reference/data-model.md#enrolment,
docs/api.md#platform-data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, tuple_

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import course_batch, user_enrolments
from learnagg.app import App
from learnagg.domain.dates import format_api_ts, today
from learnagg.domain.identity import Caller
from learnagg.domain.platform import EnrolmentRecord, acts_as, default_user, enrol_refusal, unenrol_refusal
from learnagg.errors import api_error
from learnagg.services import activity_agg
from learnagg.services.batches import ItemRefused
from learnagg.services.identity import is_platform_admin, require_admin

ue = user_enrolments


def _key(user_id: str, course_id: str, batch_id: str) -> Any:
    return (ue.c.userid == user_id) & (ue.c.courseid == course_id) & (ue.c.batchid == batch_id)


def _prepare(conn: Connection, app: App, caller: Caller, course_id: str, batch_id: str, user_id: str) -> Any:
    """Admin check for another user, then the batch and the (locked) enrolment row; 404 BATCH_NOT_FOUND."""
    if not acts_as(caller, user_id):
        require_admin(conn, caller)
    dates = course_batch.c.status, course_batch.c.end_date, course_batch.c.enrollment_enddate
    where = (course_batch.c.courseid == course_id) & (course_batch.c.batchid == batch_id)
    batch = conn.execute(select(*dates).where(where)).first()
    if batch is None:
        raise api_error("BATCH_NOT_FOUND")
    stmt = app.store.dialect.lock_for_update(select(ue.c.active, ue.c.status).where(_key(user_id, course_id, batch_id)))
    return batch, conn.execute(stmt).first()


def _day(ms: int | None, zone: str) -> Any:
    return None if ms is None else today(ms, zone)


def enrol(app: App, caller: Caller, course_id: str, batch_id: str, user_id: str | None, now: int) -> dict[str, Any]:
    """``POST /v1/course/enrol``: a new row, or the reactivation of an inactive one keeping status and progress.

    Args:
        app: the application.
        caller: the caller; ``user_id`` defaults to ``caller.subject``, another user needs an admin.
        course_id: the course.
        batch_id: the batch.
        user_id: the learner.
        now: epoch ms (the new row's enrolled_date).
    """
    user_id = default_user(caller, user_id)
    zone = app.settings.timezone
    with app.store.write() as conn:
        batch, row = _prepare(conn, app, caller, course_id, batch_id, user_id)
        code = enrol_refusal(
            status=batch.status,
            end_date=_day(batch.end_date, zone),
            enrollment_end_date=_day(batch.enrollment_enddate, zone),
            enrolment_active=None if row is None else bool(row.active),
            today=today(now, zone),
        )
        if code is not None:
            raise api_error(code)
        new_row = {
            "userid": user_id,
            "courseid": course_id,
            "batchid": batch_id,
            "active": True,
            "addedby": caller.user_id,
            "status": 0,
            "progress": 0,
            "enrolled_date": now,
            "enrolleddate": format_api_ts(now, zone),
        }
        # An existing (inactive) row only becomes active again: its status, progress and dates are kept.
        conn.execute(app.store.dialect.upsert(ue, replace=["active", "addedby"]), [new_row])
        activity_agg.refresh(conn, app.store.dialect, [(course_id, batch_id)], now)
    return {"response": "SUCCESS"}


def unenrol(app: App, caller: Caller, course_id: str, batch_id: str, user_id: str | None, now: int) -> dict[str, Any]:
    """``POST /v1/course/unenrol``: sets active to false; aggregates are left unchanged (docs/api.md#platform-data)."""
    user_id = default_user(caller, user_id)
    zone = app.settings.timezone
    with app.store.write() as conn:
        batch, row = _prepare(conn, app, caller, course_id, batch_id, user_id)
        code = unenrol_refusal(
            status=batch.status,
            end_date=_day(batch.end_date, zone),
            enrolment_active=None if row is None else bool(row.active),
            enrolment_status=None if row is None else row.status,
            today=today(now, zone),
        )
        if code is not None:
            raise api_error(code)
        conn.execute(ue.update().where(_key(user_id, course_id, batch_id)).values(active=False))
        activity_agg.refresh(conn, app.store.dialect, [(course_id, batch_id)], now)
    return {"response": "SUCCESS"}


def enrolment_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A `user_enrolments` row as the API shows it (timestamps as epoch ms, docs/reference/data-model.md#c1)."""
    return {
        "userId": row["userid"],
        "courseId": row["courseid"],
        "batchId": row["batchid"],
        "active": bool(row["active"]),
        "status": row["status"],
        "progress": row["progress"],
        "enrolledDate": row["enrolled_date"],
        "completedOn": row["completedon"],
        "addedBy": row["addedby"],
        "lastReadContentId": row["lastreadcontentid"],
        "lastReadContentStatus": row["lastreadcontentstatus"],
        "lastContentAccessTime": row["lastcontentaccesstime"],
        "certStatus": row["certstatus"],
        "contentStatus": row["contentstatus"] or {},
        "issuedCertificates": row["issued_certificates"] or [],
    }


def list_enrolments(app: App, caller: Caller, user_id: str | None) -> dict[str, Any]:
    """``POST /v1/course/enrolment/list``: the user's active enrolments sorted by (courseId, batchId)."""
    user_id = default_user(caller, user_id)
    stmt = select(ue).where(ue.c.userid == user_id, ue.c.active.is_(True)).order_by(ue.c.courseid, ue.c.batchid)
    with app.store.read() as conn:
        if not acts_as(caller, user_id) and not is_platform_admin(conn, caller):
            raise api_error("UNAUTHORIZED_USER")
        rows = conn.execute(stmt).mappings().all()
    return {"courses": [enrolment_fields(r) for r in rows]}


def load_enrolments(
    conn: Connection, dialect: Dialect, items: Sequence[EnrolmentRecord], *, now: int, zone: str
) -> int:
    """Upsert existing enrolments as active rows (`learnagg load enrolments`); other columns are kept.

    Args:
        conn: a write transaction.
        dialect: the store dialect.
        items: the enrolments; their batches must exist.
        now: the default enrolled_date.
        zone: setting `timezone` (the legacy `enrolleddate` text).

    Returns:
        The number of distinct enrolments written.

    Raises:
        ItemRefused: BATCH_NOT_FOUND for an item whose (course, batch) does not exist.
    """
    if not items:
        return 0
    pairs = {(e.course_id, e.batch_id) for e in items}
    stmt = select(course_batch.c.courseid, course_batch.c.batchid)
    known = {(r.courseid, r.batchid) for r in conn.execute(stmt.where(tuple_(*stmt.selected_columns).in_(pairs)))}
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for index, e in enumerate(items):
        if (e.course_id, e.batch_id) not in known:
            raise ItemRefused(index, api_error("BATCH_NOT_FOUND"))
        enrolled = now if e.enrolled_date is None else e.enrolled_date
        rows[(e.user_id, e.course_id, e.batch_id)] = {
            "userid": e.user_id,
            "courseid": e.course_id,
            "batchid": e.batch_id,
            "active": True,
            "status": e.status,
            "progress": e.progress,
            "enrolled_date": enrolled,
            "enrolleddate": format_api_ts(enrolled, zone),
            "completedon": e.completed_on,
        }
    replace = ["active", "status", "progress", "enrolled_date", "enrolleddate", "completedon"]
    conn.execute(dialect.upsert(ue, replace=replace), list(rows.values()))
    activity_agg.refresh(conn, dialect, pairs, now)
    return len(rows)
