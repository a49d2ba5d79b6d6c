"""The assessment aggregator (docs/jobs/assessment.md#attempts) and score aggregation
(docs/jobs/assessment.md#score-aggregation), one batch per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from learnagg.adapters.bus.log import EventLog
from learnagg.adapters.store import scores
from learnagg.adapters.store.dialects import Dialect
from learnagg.adapters.store.scores import Learner, LiveAttempt, MetricsPatch, context_id
from learnagg.domain.assess_event import AssessmentBatchEvent
from learnagg.domain.attempt_metrics import (
    AttemptHistory,
    AttemptRecord,
    content_metrics,
    latest_attempt_id,
    merge_attempts,
    parse_agg_details,
    render_agg_details,
)
from learnagg.domain.clock import Clock
from learnagg.domain.messages import issue_certificate_request
from learnagg.domain.scoring import AttemptScore, known_total_questions, leaf_error, question_count_error, score_attempt
from learnagg.domain.topics import Topics
from learnagg.settings import AssessmentSettings, LegacySettings
from learnagg.streams import phases
from learnagg.streams.handler import BatchResult, Incoming

# Counter names of the reference job, so dashboards built for it keep working.
COUNTERS = {
    "success": "batch-success-count",
    "skipped": "skipped-event-count",
    "ignored": "ignored-event-count",
    "failed": "failed-event-count",
    "recompute": "recompute-agg-event-count",
    "certificate": "certificate-issue-event-count",
}


@dataclass(slots=True)
class _LearnerState:
    """One learner's attempts and history while a batch is applied in memory, exactly as stored would be."""

    live: dict[tuple[str, str], LiveAttempt]
    history: AttemptHistory


class AssessmentAggregator:
    """Handles batches of assessment batch events inside the consumer loop's transaction."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        log: EventLog,
        topics: Topics,
        clock: Clock,
        settings: AssessmentSettings,
        legacy: LegacySettings,
    ) -> None:
        """Wire the handler to the store dialect, the log for certificate requests and the settings."""
        self.dialect = dialect
        self.log = log
        self.topics = topics
        self.clock = clock
        self.settings = settings
        self.legacy_zone = legacy.date_zone

    def handle(self, conn: Connection, batch: Sequence[Incoming[AssessmentBatchEvent]]) -> BatchResult:
        """Apply the batch in log order; the outcome equals processing the events one at a time."""
        result = BatchResult()
        accepted = self._check(conn, batch, result)
        phases.lap(phases.VALIDATE)
        learners = {(e.course_id, e.batch_id, e.user_id) for _, e, _ in accepted}
        self.dialect.lock_learners(conn, learners)
        state = self._load(conn, learners)
        phases.lap(phases.HISTORY)

        attempt_rows: dict[tuple[str, ...], dict[str, Any]] = {}
        touched: dict[Learner, int] = {}  # learners with attempts, in first-touch order: the clock of their last event
        certificates: list[tuple[str | None, str]] = []
        for _incoming, event, score in accepted:
            now = self.clock()
            learner = (event.course_id, event.batch_id, event.user_id)
            learner_state = state[learner]
            if score is not None:
                if not self._apply_attempt(event, score, learner_state, attempt_rows, now):
                    result.counters["skipped"] += 1
                    continue
            else:
                result.counters["recompute"] += 1
            attempt_id = self._merge(learner_state)
            if learner_state.history.records:
                touched[learner] = now
            certificates.append(
                (
                    None,
                    _dumps(
                        issue_certificate_request(
                            course_id=event.course_id,
                            batch_id=event.batch_id,
                            user_id=event.user_id,
                            now=now,
                            attempt_id=attempt_id,
                        )
                    ),
                )
            )
            result.counters["success"] += 1

        patches = {self._patch_key(learner): self._patch(state[learner], now) for learner, now in touched.items()}
        phases.lap(phases.AGGREGATE)
        scores.write_attempts(conn, self.dialect, list(attempt_rows.values()))
        scores.patch_activity_rows(conn, self.dialect, patches)
        phases.lap(phases.UPSERT)
        result.changed_users.update(user_id for _, user_id, _ in patches)
        self.log.append(conn, self.topics.certificate_request, certificates, self.clock())
        phases.lap(phases.OUTBOX)
        result.counters["certificate"] += len(certificates)
        return result

    def _check(
        self, conn: Connection, batch: Sequence[Incoming[AssessmentBatchEvent]], result: BatchResult
    ) -> list[tuple[Incoming[AssessmentBatchEvent], AssessmentBatchEvent, AttemptScore | None]]:
        """docs/jobs/assessment.md#a3, docs/jobs/assessment.md#a6 for the whole batch with one query each; returns the
        events that pass."""
        events = [i.message for i in batch]
        leaves = scores.leaf_nodes(conn, (e.course_id for e in events))
        guard = self.settings.question_count_guard
        totals = scores.total_questions(conn, (e.content_id for e in events if guard and not e.is_recompute))
        accepted = []
        for incoming in batch:
            event = incoming.message
            error = leaf_error(event, leaves[event.course_id], self.settings.strict_leaf_validation)
            score = None if event.is_recompute else score_attempt(event.questions)
            if error is None and score is not None and guard:
                error = question_count_error(
                    len(score.questions), known_total_questions(totals.get(event.content_id)), event.content_id
                )
                if error is not None:
                    result.counters["ignored"] += 1
            if error is not None:
                result.failures.append((incoming, error))
                continue
            accepted.append((incoming, event, score))
        return accepted

    def _load(self, conn: Connection, learners: set[Learner]) -> dict[Learner, _LearnerState]:
        """docs/jobs/assessment.md#s1, docs/jobs/assessment.md#s2 for every learner of the batch: two queries in all."""
        live = scores.live_attempts(conn, learners)
        details = scores.course_agg_details(conn, learners)
        return {
            learner: _LearnerState(live[learner], parse_agg_details(details.get(learner), self.legacy_zone))
            for learner in learners
        }

    @staticmethod
    def _apply_attempt(
        event: AssessmentBatchEvent,
        score: AttemptScore,
        state: _LearnerState,
        attempt_rows: dict[tuple[str, ...], dict[str, Any]],
        now: int,
    ) -> bool:
        """docs/jobs/assessment.md#a8, the guarded upsert: insert, overwrite a strictly older attempt, or skip
        (False)."""
        attempt_id = event.attempt_id or ""
        stored = state.live.get((event.content_id, attempt_id))
        if stored is not None and not (
            stored.last_attempted_on is None or event.assessment_ts > stored.last_attempted_on
        ):
            return False
        created_on = now if stored is None else stored.created_on
        state.live[(event.content_id, attempt_id)] = LiveAttempt(
            created_on, event.assessment_ts, score.total_score, score.total_max_score
        )
        key = (event.user_id, event.course_id, event.batch_id, event.content_id, attempt_id)
        attempt_rows[key] = {
            "user_id": event.user_id,
            "course_id": event.course_id,
            "batch_id": event.batch_id,
            "content_id": event.content_id,
            "attempt_id": attempt_id,
            "created_on": created_on,
            "updated_on": now,
            "last_attempted_on": event.assessment_ts,
            "total_score": score.total_score,
            "total_max_score": score.total_max_score,
            "grand_total": score.grand_total,
            "question": [q.to_json() for q in score.questions],
        }
        return True

    @staticmethod
    def _merge(state: _LearnerState) -> str:
        """docs/jobs/assessment.md#s3 for one learner after one event; returns the attempt id its certificate request
        carries (docs/jobs/assessment.md#s7)."""
        live = (
            AttemptRecord(attempt_id, content_id, row.total_score, row.total_max_score, row.last_attempted_on)
            for (content_id, attempt_id), row in state.live.items()
        )
        records = tuple(merge_attempts(state.history.records, live).values())
        if records:
            state.history = AttemptHistory(records, state.history.opaque)
        return latest_attempt_id(records)

    @staticmethod
    def _patch_key(learner: Learner) -> tuple[str, str, str]:
        course_id, batch_id, user_id = learner
        return (course_id, user_id, context_id(batch_id))

    def _patch(self, state: _LearnerState, now: int) -> MetricsPatch:
        """docs/jobs/assessment.md#s4, docs/jobs/assessment.md#s5 once per learner and batch, from the learner's records
        after its last event: its records only grow, so these metrics cover every key an earlier event of the batch
        would have written, and the last event's clock is what each key's `agg_last_updated` would have ended with."""
        records = state.history.records
        metrics = content_metrics(records, self.settings.grading_method)
        details = render_agg_details(records, state.history.opaque, self.settings.agg_details_type)
        return MetricsPatch(metrics, dict.fromkeys(metrics, now), details)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
