"""Course hierarchies: loading into `course`, `course_node` and `content` (docs/reference/data-model.md#hierarchy), and
reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, select

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import content, course, course_node
from learnagg.app import App
from learnagg.domain.hierarchy import CourseTree, InvalidHierarchy, parse_hierarchy
from learnagg.domain.identity import Caller
from learnagg.errors import api_error
from learnagg.services.identity import require_admin


def load_courses(conn: Connection, dialect: Dialect, items: Iterable[tuple[CourseTree, Any]], now: int) -> int:
    """Replace each course's stored structure with the parsed tree; content metadata: the latest load wins.

    Args:
        conn: a write transaction.
        dialect: the store dialect (for upserts).
        items: (parsed tree, hierarchy JSON as loaded) pairs.
        now: epoch ms written to `updated_on`.

    Returns:
        The number of courses loaded.
    """
    courses: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    contents: dict[str, dict[str, Any]] = {}
    for tree, hierarchy in items:
        courses.append(
            {
                "course_id": tree.course_id,
                "name": tree.name,
                "status": tree.status,
                "channel": tree.channel,
                "leaf_nodes_count": tree.leaf_nodes_count,
                "hierarchy": hierarchy,
                "updated_on": now,
            }
        )
        nodes.extend(
            {
                "course_id": tree.course_id,
                "node_id": n.node_id,
                "parent_ids": list(n.parent_ids),
                "is_leaf": n.is_leaf,
                "optional": n.optional,
                "position": n.position,
            }
            for n in tree.nodes.values()
        )
        for meta in tree.contents.values():
            contents[meta.content_id] = {
                "content_id": meta.content_id,
                "name": meta.name,
                "content_type": meta.content_type,
                "object_type": meta.object_type,
                "primary_category": meta.primary_category,
                "mime_type": meta.mime_type,
                "total_questions": meta.total_questions,
                "updated_on": now,
            }
    if not courses:
        return 0
    # A course loaded twice in one file: the later line wins, as if the lines were loaded one by one.
    by_id = {c["course_id"]: c for c in courses}
    conn.execute(delete(course_node).where(course_node.c.course_id.in_(list(by_id))))
    last_nodes = {(n["course_id"], n["node_id"]): n for n in nodes}
    conn.execute(course_node.insert(), list(last_nodes.values()))
    course_columns = [c for c in courses[0] if c != "course_id"]
    conn.execute(dialect.upsert(course, replace=course_columns), list(by_id.values()))
    content_columns = [c for c in next(iter(contents.values())) if c != "content_id"]
    conn.execute(dialect.upsert(content, replace=content_columns), list(contents.values()))
    return len(by_id)


def load_course_hierarchy(app: App, caller: Caller, hierarchy: Mapping[str, Any], now: int) -> dict[str, Any]:
    """``POST /v1/course/hierarchy/load``: admin only; replaces the course's structure
    (docs/reference/data-model.md#hierarchy).

    An invalid hierarchy is INVALID_PARAMETER_VALUE naming ``hierarchy`` with the reason.
    """
    try:
        tree = parse_hierarchy(hierarchy)
    except InvalidHierarchy as exc:
        raise api_error("INVALID_PARAMETER_VALUE", name="hierarchy", value=f"({exc})") from exc
    with app.store.write() as conn:
        require_admin(conn, caller)
        load_courses(conn, app.store.dialect, [(tree, hierarchy)], now)
    return {"courseId": tree.course_id, "leafNodesCount": tree.leaf_nodes_count}


def read_course_hierarchy(app: App, course_id: str) -> dict[str, Any]:
    """``GET /v1/course/hierarchy/read/{courseId}``: the hierarchy as loaded; 404 COURSE_NOT_FOUND."""
    with app.store.read() as conn:
        row = conn.execute(select(course).where(course.c.course_id == course_id)).mappings().first()
    if row is None:
        raise api_error("COURSE_NOT_FOUND")
    return {
        "courseId": row["course_id"],
        "name": row["name"],
        "status": row["status"],
        "channel": row["channel"],
        "leafNodesCount": row["leaf_nodes_count"],
        "updatedOn": row["updated_on"],
        "hierarchy": row["hierarchy"],
    }
