"""Batched reads and writes of attempts and score metrics: one query per batch of learners, never one per row."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.tables import (
    assessment_aggregator,
    content,
    course_node,
    user_activity_agg,
)

Learner = tuple[str, str, str]  # (course_id, batch_id, user_id)
# activity_type of every aggregate row, unit rows included (docs/reference/data-model.md#user-activity-agg)
COURSE = "Course"


def context_id(batch_id: str) -> str:
    """The aggregate row context of a batch: ``cb:<batchId>``."""
    return f"cb:{batch_id}"


@dataclass(slots=True)
class LiveAttempt:
    """The columns of an `assessment_aggregator` row that scoring and the out-of-order guard need."""

    created_on: int | None
    last_attempted_on: int | None
    total_score: float
    total_max_score: float


def leaf_nodes(conn: Connection, course_ids: Iterable[str]) -> dict[str, set[str]]:
    """``leafNodes(course)`` for each course id; an unknown course maps to an empty set
    (docs/reference/data-model.md#hierarchy)."""
    ids = sorted(set(course_ids))
    found: dict[str, set[str]] = {c: set() for c in ids}
    if ids:
        stmt = select(course_node.c.course_id, course_node.c.node_id).where(
            course_node.c.course_id.in_(ids), course_node.c.is_leaf.is_(True)
        )
        for course_id, node_id in conn.execute(stmt):
            found[course_id].add(node_id)
    return found


def total_questions(conn: Connection, content_ids: Iterable[str]) -> dict[str, int | None]:
    """``content.total_questions`` for each known content id."""
    ids = sorted(set(content_ids))
    if not ids:
        return {}
    stmt = select(content.c.content_id, content.c.total_questions).where(content.c.content_id.in_(ids))
    return {content_id: total for content_id, total in conn.execute(stmt)}


def live_attempts(conn: Connection, learners: Iterable[Learner]) -> dict[Learner, dict[tuple[str, str], LiveAttempt]]:
    """Every live attempt of each learner, keyed by (content_id, attempt_id) (docs/jobs/assessment.md#s1)."""
    wanted = set(learners)
    out: dict[Learner, dict[tuple[str, str], LiveAttempt]] = {lr: {} for lr in wanted}
    if not wanted:
        return out
    a = assessment_aggregator.c
    # Filtering on the leading primary-key columns lets both databases search the index; the exact
    # (course, batch, user) match is finished here (a row-value IN makes SQLite scan the whole index).
    stmt = select(
        a.course_id,
        a.batch_id,
        a.user_id,
        a.content_id,
        a.attempt_id,
        a.created_on,
        a.last_attempted_on,
        a.total_score,
        a.total_max_score,
    ).where(
        a.user_id.in_(sorted({u for _, _, u in wanted})),
        a.course_id.in_(sorted({c for c, _, _ in wanted})),
        a.batch_id.in_(sorted({b for _, b, _ in wanted})),
    )
    for course_id, batch_id, user_id, content_id, attempt_id, created, last, score, max_score in conn.execute(stmt):
        learner = (course_id, batch_id, user_id)
        if learner in wanted:
            out[learner][(content_id, attempt_id)] = LiveAttempt(
                created, last, float(score or 0.0), float(max_score or 0.0)
            )
    return out


def course_agg_details(conn: Connection, learners: Iterable[Learner]) -> dict[Learner, list[str] | None]:
    """The stored `agg_details` of each learner's course row (docs/jobs/assessment.md#s2); missing rows are left out."""
    wanted = set(learners)
    if not wanted:
        return {}
    u = user_activity_agg.c
    stmt = select(u.activity_id, u.context_id, u.user_id, u.agg_details).where(
        u.activity_type == COURSE,
        u.activity_id.in_(sorted({c for c, _, _ in wanted})),
        u.user_id.in_(sorted({user for _, _, user in wanted})),
        u.context_id.in_(sorted({context_id(b) for _, b, _ in wanted})),
    )
    by_context = {(c, context_id(b), user): (c, b, user) for c, b, user in wanted}
    out: dict[Learner, list[str] | None] = {}
    for activity_id, ctx, user_id, details in conn.execute(stmt):
        learner = by_context.get((activity_id, ctx, user_id))
        if learner is not None:
            out[learner] = details
    return out


def write_attempts(conn: Connection, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or overwrite `assessment_aggregator` rows; an existing row keeps its created_on
    (docs/jobs/assessment.md#a8)."""
    if rows:
        columns = [c.name for c in assessment_aggregator.columns if not c.primary_key and c.name != "created_on"]
        conn.execute(dialect.upsert(assessment_aggregator, replace=columns, keep=["created_on"]), list(rows))


@dataclass(slots=True)
class MetricsPatch:
    """A pending S5 write of one aggregate row: map patches plus, optionally, the whole `agg_details`."""

    aggregates: dict[str, float]
    agg_last_updated: dict[str, int]
    agg_details: list[str] | None = None


def patch_activity_rows(
    conn: Connection, dialect: Dialect, patches: Mapping[tuple[str, str, str], MetricsPatch]
) -> None:
    """Apply map patches to `user_activity_agg` rows keyed by (activity_id, user_id, context_id)
    (docs/reference/data-model.md#d2).

    Rows whose patch replaces `agg_details` and rows that keep it go in two statements so a patch without
    details never nulls stored ones.
    """
    with_details: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for (activity_id, user_id, ctx), patch in patches.items():
        row = {
            "activity_type": COURSE,
            "activity_id": activity_id,
            "user_id": user_id,
            "context_id": ctx,
            "aggregates": patch.aggregates,
            "agg_last_updated": patch.agg_last_updated,
        }
        if patch.agg_details is None:
            without.append(row)
        else:
            row["agg_details"] = patch.agg_details
            with_details.append(row)
    maps = ["aggregates", "agg_last_updated"]
    if with_details:
        conn.execute(dialect.upsert(user_activity_agg, replace=["agg_details"], patch_maps=maps), with_details)
    if without:
        conn.execute(dialect.upsert(user_activity_agg, patch_maps=maps), without)
