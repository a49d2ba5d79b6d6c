"""Batched reads and writes of the activity aggregate updater (docs/jobs/progress.md): one statement per table and
batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.scores import Learner
from learnagg.adapters.store.tables import course, dedup_key, user_content_consumption, user_enrolments

COMPLETED = 2


@dataclass(frozen=True, slots=True)
class StoredCourse:
    """A course's status and its hierarchy as loaded (docs/reference/data-model.md#hierarchy)."""

    status: str | None
    hierarchy: Any


def courses(conn: Connection, course_ids: Iterable[str]) -> dict[str, StoredCourse]:
    """The stored courses among ``course_ids``; unknown ids are left out."""
    ids = sorted(set(course_ids))
    if not ids:
        return {}
    c = course.c
    stmt = select(c.course_id, c.status, c.hierarchy).where(c.course_id.in_(ids))
    return {course_id: StoredCourse(status, hierarchy) for course_id, status, hierarchy in conn.execute(stmt)}


def dedup_expiries(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """``expires_on`` of each stored dedup key among ``keys`` (docs/jobs/progress.md#p4)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    stmt = select(dedup_key.c.key, dedup_key.c.expires_on).where(dedup_key.c.key.in_(wanted))
    return {key: expires_on for key, expires_on in conn.execute(stmt)}


def consumption_statuses(conn: Connection, learners: Iterable[Learner]) -> dict[Learner, dict[str, int | None]]:
    """Every stored consumption row's status for each learner (docs/jobs/progress.md#p6), by content id in content-id
    order."""
    wanted = set(learners)
    out: dict[Learner, dict[str, int | None]] = {lr: {} for lr in wanted}
    if not wanted:
        return out
    u = user_content_consumption.c
    # Leading primary-key columns first so both databases use the index; the exact learner match is finished here.
    stmt = (
        select(u.courseid, u.batchid, u.userid, u.contentid, u.status)
        .where(
            u.userid.in_(sorted({user for _, _, user in wanted})),
            u.courseid.in_(sorted({c for c, _, _ in wanted})),
            u.batchid.in_(sorted({b for _, b, _ in wanted})),
        )
        .order_by(u.userid, u.courseid, u.batchid, u.contentid)
    )
    for course_id, batch_id, user_id, content_id, status in conn.execute(stmt):
        learner = (course_id, batch_id, user_id)
        if learner in wanted:
            out[learner][content_id] = status
    return out


def enrolment_statuses(conn: Connection, learners: Iterable[Learner]) -> dict[Learner, int | None]:
    """The stored enrolment status of each learner that has an enrolment row (status may be null)."""
    wanted = set(learners)
    if not wanted:
        return {}
    e = user_enrolments.c
    stmt = select(e.courseid, e.batchid, e.userid, e.status).where(
        e.userid.in_(sorted({user for _, _, user in wanted})),
        e.courseid.in_(sorted({c for c, _, _ in wanted})),
        e.batchid.in_(sorted({b for _, b, _ in wanted})),
    )
    out: dict[Learner, int | None] = {}
    for course_id, batch_id, user_id, status in conn.execute(stmt):
        learner = (course_id, batch_id, user_id)
        if learner in wanted:
            out[learner] = status
    return out


def bump_consumption(conn: Connection, dialect: Dialect, counts: Mapping[tuple[str, str, str, str], int]) -> None:
    """docs/jobs/progress.md#p6: add to `viewcount` and `completedcount` of (course, batch, user, content) rows,
    creating missing ones.

    The increment is done by the database (``coalesce(column, 0) + n``), so a concurrent writer of other columns
    (the content-state API) is never overwritten, and a created row keeps every other column null, its status
    included ("leaving its stored status as it is"). Rows go in key order: the same lock order as the API.
    """
    if not counts:
        return
    table = user_content_consumption
    rows = [
        {"userid": user, "courseid": c, "batchid": b, "contentid": content, "viewcount": n, "completedcount": n}
        for (c, b, user, content), n in sorted(counts.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1], kv[0][3]))
    ]
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[col.name for col in table.primary_key.columns],
        set_={
            "viewcount": func.coalesce(table.c.viewcount, 0) + stmt.excluded.viewcount,
            "completedcount": func.coalesce(table.c.completedcount, 0) + stmt.excluded.completedcount,
        },
    )
    conn.execute(stmt, rows)


def update_enrolments(conn: Connection, changes: Mapping[Learner, Mapping[str, Any]]) -> None:
    """docs/jobs/progress.md#p9: write status, progress, contentstatus, datetime (and completedon on completion) of
    enrolments.

    Only existing rows are updated, and never one already completed (status 2), even if it was completed after
    it was read.
    """
    if not changes:
        return
    e = user_enrolments.c
    params = [
        {
            "k_user": user_id,
            "k_course": course_id,
            "k_batch": batch_id,
            "v_status": cols["status"],
            "v_progress": cols["progress"],
            "v_contentstatus": cols["contentstatus"],
            "v_datetime": cols["datetime"],
            "v_completedon": cols.get("completedon"),
        }
        for (course_id, batch_id, user_id), cols in sorted(changes.items(), key=lambda kv: (kv[0][2], kv[0][:2]))
    ]
    stmt = (
        update(user_enrolments)
        .where(
            e.userid == bindparam("k_user"),
            e.courseid == bindparam("k_course"),
            e.batchid == bindparam("k_batch"),
            or_(e.status.is_(None), e.status != COMPLETED),
        )
        .values(
            status=bindparam("v_status", type_=e.status.type),
            progress=bindparam("v_progress", type_=e.progress.type),
            contentstatus=bindparam("v_contentstatus", type_=e.contentstatus.type),
            datetime=bindparam("v_datetime", type_=e.datetime.type),
            # An in-progress update keeps whatever completedon holds.
            completedon=func.coalesce(bindparam("v_completedon", type_=e.completedon.type), e.completedon),
        )
    )
    conn.execute(stmt, params)


def store_dedup_keys(conn: Connection, dialect: Dialect, expiries: Mapping[str, int]) -> None:
    """docs/jobs/progress.md#p10: insert or renew dedup keys with their expiry."""
    if expiries:
        rows: Sequence[dict[str, Any]] = [{"key": k, "expires_on": v} for k, v in sorted(expiries.items())]
        conn.execute(dialect.upsert(dedup_key, replace=["expires_on"]), rows)
