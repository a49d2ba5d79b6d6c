"""Score aggregation S1–S5 for many learners at once, outside the stream: the score-metric migration
(docs/batch.md#migrations-and-imports) and archival deletion (docs/batch.md#assessment-archival, with the archived rows
as an extra source)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection

from learnagg.adapters.store import scores
from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.scores import Learner, MetricsPatch, context_id
from learnagg.domain.attempt_metrics import (
    AttemptRecord,
    content_metrics,
    merge_attempts,
    parse_agg_details,
    render_agg_details,
)
from learnagg.settings import AssessmentSettings, LegacySettings


def plan_scores(
    conn: Connection,
    learners: Iterable[Learner],
    *,
    settings: AssessmentSettings,
    legacy: LegacySettings,
    now: int,
    extra: Mapping[Learner, Iterable[AttemptRecord]] | None = None,
    details: Mapping[Learner, list[str] | None] | None = None,
) -> dict[Learner, MetricsPatch]:
    """Compute the S5 write of each learner (docs/jobs/assessment.md#score-aggregation) without writing it.

    Reads the live attempts and, unless given, the stored history of every learner with one query each. The
    caller holds the learner lock (docs/reference/data-model.md#d3) when it means to write the result.

    Args:
        conn: a transaction.
        learners: (course_id, batch_id, user_id) keys.
        settings: grading method and `agg_details` type.
        legacy: how legacy `agg_details` dates are read.
        now: the `agg_last_updated` value of every metric key.
        extra: attempts from another source per learner (archived rows); they rank between the stored history and
            the live rows (docs/jobs/assessment.md#s3).
        details: the stored `agg_details` of each learner's course row, when the caller has already read them
            (a learner left out has none).

    Returns:
        The patch of each learner that has at least one attempt; learners without any are left out (S5).
    """
    wanted = set(learners)
    if not wanted:
        return {}
    live = scores.live_attempts(conn, wanted)
    stored = scores.course_agg_details(conn, wanted) if details is None else details
    extra = extra or {}
    patches: dict[Learner, MetricsPatch] = {}
    for learner in sorted(wanted):
        history = parse_agg_details(stored.get(learner), legacy.date_zone)
        live_records = [
            AttemptRecord(attempt_id, content_id, row.total_score, row.total_max_score, row.last_attempted_on)
            for (content_id, attempt_id), row in live[learner].items()
        ]
        records = list(merge_attempts(history.records, extra.get(learner, ()), live_records).values())
        if not records:  # S5: nothing is written for a learner without any attempt
            continue
        metrics = content_metrics(records, settings.grading_method)
        patches[learner] = MetricsPatch(
            metrics,
            dict.fromkeys(metrics, now),
            render_agg_details(records, history.opaque, settings.agg_details_type),
        )
    return patches


def recompute_scores(
    conn: Connection,
    dialect: Dialect,
    learners: Iterable[Learner],
    *,
    settings: AssessmentSettings,
    legacy: LegacySettings,
    now: int,
    extra: Mapping[Learner, Iterable[AttemptRecord]] | None = None,
) -> set[str]:
    """Recompute `score`, `max_score`, `attempts_count` and `agg_details` of each learner
    (docs/jobs/assessment.md#score-aggregation).

    Takes the learner lock (docs/reference/data-model.md#d3), reads the live attempts and the stored history of every
    learner with two
    queries, and writes every changed row with one upsert. No certificate request is emitted (docs/batch.md).

    Args:
        conn: a write transaction.
        dialect: the store dialect.
        learners: (course_id, batch_id, user_id) keys.
        settings: grading method and `agg_details` type.
        legacy: how legacy `agg_details` dates are read.
        now: written to `agg_last_updated`.
        extra: attempts from another source per learner (archived rows); they rank between the stored history and
            the live rows (docs/jobs/assessment.md#s3).

    Returns:
        The users whose `user_activity_agg` rows were written (for group-cache invalidation).
    """
    wanted = set(learners)
    if not wanted:
        return set()
    dialect.lock_learners(conn, wanted)
    planned = plan_scores(conn, wanted, settings=settings, legacy=legacy, now=now, extra=extra)
    patches = {
        (course_id, user_id, context_id(batch_id)): patch for (course_id, batch_id, user_id), patch in planned.items()
    }
    scores.patch_activity_rows(conn, dialect, patches)
    return {user_id for _, user_id, _ in patches}
