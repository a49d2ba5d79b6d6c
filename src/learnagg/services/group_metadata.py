"""Activity metadata of the group aggregates (docs/api.md "Group aggregates: metadata and fields").

One query for any number of activities, in the caller's read transaction: the courses, each joined with the batches
of that course in which an active member of the group holds an active enrolment.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, select, true

from learnagg.adapters.store.tables import course, course_batch, group_member, user_enrolments
from learnagg.domain.dates import format_date
from learnagg.domain.platform import ACTIVE


@cache
def _metadata_statement() -> Select[Any]:
    """The courses, each with the batches where an active member has an active enrolment (each once, sorted by id),
    or once with nulls when there is none: one query."""
    c, b, e, m = course.c, course_batch.c, user_enrolments.c, group_member.c
    enrolled = (
        select(e.courseid, e.batchid)
        .select_from(group_member.join(user_enrolments, e.userid == m.user_id))
        .where(
            m.group_id == bindparam("group_id"),
            m.status == ACTIVE,
            e.courseid.in_(bindparam("activity_ids", expanding=True)),
            e.active == true(),
        )
        .distinct()
        .subquery()
    )
    batches = course_batch.join(enrolled, and_(enrolled.c.courseid == b.courseid, enrolled.c.batchid == b.batchid))
    return (
        select(c.course_id, c.name, c.status, c.leaf_nodes_count)
        .add_columns(b.batchid, b.name, b.status, b.start_date, b.end_date)
        .select_from(course.outerjoin(batches, b.courseid == c.course_id))
        .where(c.course_id.in_(bindparam("activity_ids", expanding=True)))
        .order_by(c.course_id, b.batchid)
    )


def metadata(conn: Connection, group_id: str, activity_ids: Sequence[str], zone: str) -> dict[str, dict[str, Any]]:
    """``{"name", "status", "leafNodesCount", "batches"}`` per known course; unknown courses are left out.

    Args:
        conn: the read transaction of the request.
        group_id: the group whose active members select the batches.
        activity_ids: the courses.
        zone: setting `timezone`, the calendar of the ``yyyy-MM-dd`` batch dates.
    """
    ids = sorted(set(activity_ids))
    if not ids:
        return {}
    found: dict[str, dict[str, Any]] = {}
    params = {"group_id": group_id, "activity_ids": ids}
    for course_id, course_name, course_status, leaf_nodes, *batch in conn.execute(_metadata_statement(), params):
        held = found.get(course_id)
        if held is None:
            held = found[course_id] = {
                "name": course_name,
                "status": course_status,
                "leafNodesCount": leaf_nodes,
                "batches": [],
            }
        batch_id, name, status, start, end = batch
        if batch_id is not None:  # not a course without such batches
            held["batches"].append(
                {
                    "batchId": batch_id,
                    "name": name,
                    "status": status,
                    "startDate": None if start is None else format_date(start, zone),
                    "endDate": None if end is None else format_date(end, zone),
                }
            )
    return found
