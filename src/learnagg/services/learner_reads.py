"""One learner's attempts and score metrics for the read APIs (docs/api.md#content-state-and-assessments): one query per
table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from learnagg.adapters.store.scores import COURSE, context_id
from learnagg.adapters.store.tables import assessment_aggregator, course_batch, user_activity_agg
from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.content_state import best_score, newest_first_key, scored_contents


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One live attempt as the read APIs show it."""

    content_id: str
    attempt_id: str
    last_attempted_on: int | None
    total_score: float | None
    total_max_score: float | None
    grand_total: str | None
    question: list[dict[str, Any]] | None = None


def attempts(
    conn: Connection,
    user_id: str,
    course_id: str,
    batch_id: str,
    content_ids: Collection[str] | None,
    limit: int,
    *,
    questions: bool = False,
) -> dict[str, list[AttemptView]]:
    """The learner's live attempts per content: newest first (tie → lowest attempt_id), at most ``limit`` each.

    Args:
        conn: a transaction.
        user_id: the learner.
        course_id: the course.
        batch_id: the batch.
        content_ids: restrict to these contents (None: every content).
        limit: ``assessment.attempts.limit`` (docs/api.md#content-state-and-assessments).
        questions: also read the stored ``question`` lists (only when a caller asked for them).
    """
    a = assessment_aggregator.c
    columns = [a.content_id, a.attempt_id, a.last_attempted_on, a.total_score, a.total_max_score, a.grand_total]
    if questions:
        columns.append(a.question)
    stmt = select(*columns).where(a.user_id == user_id, a.course_id == course_id, a.batch_id == batch_id)
    if content_ids is not None:
        stmt = stmt.where(a.content_id.in_(sorted(set(content_ids))))
    found: dict[str, list[AttemptView]] = {}
    for row in conn.execute(stmt):
        found.setdefault(row.content_id, []).append(
            AttemptView(
                row.content_id,
                row.attempt_id,
                row.last_attempted_on,
                row.total_score,
                row.total_max_score,
                row.grand_total,
                row.question if questions else None,
            )
        )
    for content_id, views in found.items():
        views.sort(key=lambda v: newest_first_key(v.last_attempted_on, v.attempt_id))
        found[content_id] = views[:limit]
    return found


@dataclass(frozen=True, slots=True)
class CourseMetrics:
    """``merged`` of the learner's course row (agg ∪ aggregates, docs/reference/data-model.md#user-activity-agg) and its
    ``agg_last_updated``."""

    merged: dict[str, float] = field(default_factory=dict)
    last_updated: dict[str, Any] = field(default_factory=dict)

    def best_score(self, content_id: str) -> dict[str, Any] | None:
        """``bestScore`` of a content, None without ``score:<contentId>`` (docs/api.md#content-state-and-assessments,
        docs/reference/compatibility.md#9)."""
        return best_score(self.merged, self.last_updated, content_id)

    def scored_contents(self) -> set[str]:
        """Contents with a ``score:`` metric."""
        return scored_contents(self.merged)


def course_metrics(conn: Connection, user_id: str, course_id: str, batch_id: str) -> CourseMetrics:
    """Read the row (`Course`, courseId, userId, `cb:<batchId>`); a missing row or null maps count as empty."""
    u = user_activity_agg.c
    row = conn.execute(
        select(u.agg, u.aggregates, u.agg_last_updated).where(
            u.activity_type == COURSE,
            u.activity_id == course_id,
            u.user_id == user_id,
            u.context_id == context_id(batch_id),
        )
    ).first()
    if row is None:
        return CourseMetrics()
    agg = row.agg if isinstance(row.agg, dict) else None
    aggregates = row.aggregates if isinstance(row.aggregates, dict) else None
    last_updated = row.agg_last_updated if isinstance(row.agg_last_updated, dict) else {}
    return CourseMetrics(merged_view(agg, aggregates), last_updated)


def batch_courses(conn: Connection, batch_ids: Collection[str]) -> dict[str, tuple[str, int | None]]:
    """``{batchId: (courseId, status)}`` for the known batches among ``batch_ids`` (one query)."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    b = course_batch.c
    stmt = select(b.courseid, b.batchid, b.status).where(b.batchid.in_(ids))
    return {batch: (course, status) for course, batch, status in conn.execute(stmt)}
