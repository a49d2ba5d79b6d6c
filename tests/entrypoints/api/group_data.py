"""Group and group-data rows inserted straight into the tables, for the group aggregate API tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from learnagg import bootstrap
from learnagg.adapters.store.tables import group_member, groups, user_activity_agg, user_enrolments, users
from tests.support import course, load

T_SCORE = 1637748000000
T_DONE = 1637748930000


def _insert(app: bootstrap.App, table: Any, *rows: dict[str, Any]) -> None:
    # A None value is left out so the column is SQL NULL (a JSON column would otherwise store JSON null).
    with app.store.write() as conn:
        conn.execute(insert(table), [{k: v for k, v in row.items() if v is not None} for row in rows])


def add_group(app: bootstrap.App, group_id: str = "g-1", activities: list[dict[str, str]] | None = None) -> None:
    _insert(app, groups, {"id": group_id, "name": group_id, "status": "active", "activities": activities})


def add_member(
    app: bootstrap.App, user_id: str, *, group_id: str = "g-1", role: str = "member", status: str = "active"
) -> None:
    _insert(
        app,
        group_member,
        {"group_id": group_id, "user_id": user_id, "role": role, "status": status, "created_by": "u-1"},
    )


def add_user(app: bootstrap.App, user_id: str, first: str | None, last: str | None = None, **extra: Any) -> None:
    _insert(app, users, {"id": user_id, "first_name": first, "last_name": last, "status": 1, **extra})


def add_row(
    app: bootstrap.App,
    user_id: str,
    batch: str = "b-1",
    *,
    course_id: str = "do_c1",
    agg: dict[str, int] | None = None,
    aggregates: dict[str, float] | None = None,
    stamps: dict[str, int] | None = None,
) -> None:
    row = {
        "activity_type": "Course",
        "activity_id": course_id,
        "user_id": user_id,
        "context_id": f"cb:{batch}",
        "agg": agg,
        "aggregates": aggregates,
        "agg_last_updated": stamps,
    }
    _insert(app, user_activity_agg, row)


def add_enrolment(app: bootstrap.App, user_id: str, status: int, course_id: str = "do_c1", batch: str = "b-1") -> None:
    _insert(app, user_enrolments, {"userid": user_id, "courseid": course_id, "batchid": batch, "status": status})


def scored(content: str, score: float, max_score: float, stamp: int = T_SCORE) -> dict[str, Any]:
    """`aggregates` and `agg_last_updated` of one attempt of one content."""
    keys = {f"attempts_count:{content}": 1.0, f"max_score:{content}": max_score, f"score:{content}": score}
    return {"aggregates": keys, "stamps": dict.fromkeys(keys, stamp)}


def spec_example(app: bootstrap.App) -> None:
    """The data behind the SPEC §5.4 and §5.5 examples."""
    load(app, course("do_c1", ["do_a1"], name="Basics"))
    add_group(app, activities=[{"id": "do_c1", "type": "Course"}])
    add_member(app, "u-1", role="admin")
    add_member(app, "u-2")
    add_user(app, "u-1", "Asha", "Rao")
    add_user(app, "u-2", "Ravi", "null")
    u1 = scored("do_a1", 1.33, 2.0)
    u1["aggregates"]["completedCount"] = 3.0
    u1["stamps"]["completedCount"] = T_DONE
    add_row(app, "u-1", aggregates=u1["aggregates"], stamps=u1["stamps"])
    add_row(app, "u-2", agg={"completedCount": 1})
    add_enrolment(app, "u-1", 2)
    add_enrolment(app, "u-2", 1)
