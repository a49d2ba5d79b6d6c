"""The activity aggregate updater (docs/jobs/progress.md): progress events → consumption, completion counts,
enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from learnagg.adapters.store import progress as store
from learnagg.adapters.store import scores
from learnagg.adapters.store.scores import Learner, MetricsPatch, context_id
from learnagg.domain import progress
from learnagg.domain.assess_event import InvalidEvent
from learnagg.domain.bounds import event_violation
from learnagg.domain.hierarchy import CourseTree, InvalidHierarchy, parse_hierarchy
from learnagg.domain.messages import issue_certificate_request
from learnagg.domain.progress import ProgressEvent
from learnagg.services import activity_agg
from learnagg.streams.handler import BatchResult, Incoming

ACTIVITY_AGGREGATE_UPDATER = "ActivityAggregateUpdater"

# Counter names of the reference job, so dashboards built for it keep working.
COUNTERS = {
    "success": "success-event-count",
    "failed": "failed-event-count",
    "skipped": "skipped-event-count",
    "db_read": "db-read-count",
    "db_update": "db-update-count",
    "enrolment": "processed-enrolment-count",
    "enrolment_complete": "enrolment-complete-count",
    "certificate": "cert-issue-events-count",
    "dedup_skipped": "dedup-skipped-count",
}


def parse_progress_event(raw: object) -> ProgressEvent:
    """docs/jobs/progress.md for the consumer loop: an InvalidEvent goes to `{env}.activity.agg.failed`.

    An event the job would apply must also hold to the input bounds (no NUL, nesting at most 64 levels, finite
    numbers; docs/threat-model.md); a skipped one is skipped whatever it holds.
    """
    event = progress.parse_progress_event(raw)
    if event.skip is None:
        error = event_violation(raw)  # type: ignore[arg-type]  # an object: parse_progress_event checked it
        if error is not None:
            raise InvalidEvent(error)
    return event


@dataclass(slots=True)
class _LearnerState:
    """One learner's stored consumption statuses and enrolment while a batch is applied in memory."""

    statuses: dict[str, int | None]
    enrolled: bool
    enrolment_status: int | None


@dataclass(slots=True)
class _Pending:
    """Everything the batch writes, accumulated in log order and flushed with one statement per table."""

    views: dict[tuple[str, str, str, str], int]
    patches: dict[tuple[str, str, str], MetricsPatch]
    enrolments: dict[Learner, dict[str, Any]]
    dedup: dict[str, int]
    certificates: list[tuple[str | None, str]]


class ActivityUpdater:
    """Handles batches of progress events inside the consumer loop's transaction."""

    def __init__(self, app: Any) -> None:
        """Take the store dialect, log, topics, clock and `activity` settings from the bootstrap App."""
        self.dialect = app.store.dialect
        self.log = app.log
        self.topics = app.topics
        self.clock = app.clock
        self.settings = app.settings.activity

    def handle(self, conn: Connection, batch: Sequence[Incoming[ProgressEvent]]) -> BatchResult:
        """Apply the batch in log order; the outcome equals processing the events one at a time
        (docs/jobs/progress.md)."""
        result = BatchResult()
        events = [(i, i.message) for i in batch if i.message.skip is None]
        result.counters["skipped"] += len(batch) - len(events)
        if not events:
            return result
        dedup_on = self.settings.dedup.enabled
        learners = {e.learner for _, e in events}
        self.dialect.lock_learners(conn, learners)
        trees, retired = self._courses(conn, {e.course_id for _, e in events})
        expiries = (
            store.dedup_expiries(conn, (progress.dedup_key(*e.learner, c) for _, e in events for c in e.content_ids))
            if dedup_on
            else {}
        )
        statuses = store.consumption_statuses(conn, learners)
        enrolments = store.enrolment_statuses(conn, learners)
        result.counters["db_read"] += 4 if dedup_on else 3
        state = {lr: _LearnerState(statuses[lr], lr in enrolments, enrolments.get(lr)) for lr in sorted(learners)}
        pending = _Pending({}, {}, {}, {}, [])
        for incoming, event in events:
            now = self.clock()
            contents = event.content_ids
            if dedup_on:
                # P4: only checks keys; P10 (below) writes them, so a later event of this batch sees them.
                contents = tuple(
                    c
                    for c in contents
                    if not progress.is_live_key(expiries.get(progress.dedup_key(*event.learner, c)), now)
                )
                if not contents:
                    result.counters["dedup_skipped"] += 1
                    continue
            tree = trees.get(event.course_id)
            if tree is None:
                # P5: nothing is written; a retired course is skipped, any other is a failure (the reference crashes).
                if event.course_id in retired:
                    result.counters["skipped"] += 1
                else:
                    result.failures.append((incoming, f"leaf nodes not found for course {event.course_id}"))
                continue
            self._apply(event, contents, tree, state[event.learner], pending, result, now)
            if dedup_on:
                expires_on = now + self.settings.dedup.ttl_seconds * 1000
                for c in contents:
                    key = progress.dedup_key(*event.learner, c)
                    expiries[key] = pending.dedup[key] = expires_on
            result.changed_users.add(event.user_id)
            result.counters["success"] += 1
        self._write(conn, pending, result)
        return result

    def _courses(self, conn: Connection, course_ids: set[str]) -> tuple[dict[str, CourseTree], set[str]]:
        """Parsed trees of the courses with leaves, and the retired courses without leaves
        (docs/jobs/progress.md#p5)."""
        trees: dict[str, CourseTree] = {}
        retired: set[str] = set()
        for course_id, stored in store.courses(conn, course_ids).items():
            tree: CourseTree | None
            try:
                tree = parse_hierarchy(stored.hierarchy)
            except InvalidHierarchy:
                tree = None  # cannot happen for a hierarchy that was loaded; counts as having no leaves
            if tree is not None and tree.leaf_nodes():
                trees[course_id] = tree
            elif stored.status == progress.RETIRED:
                retired.add(course_id)
        return trees, retired

    def _apply(
        self,
        event: ProgressEvent,
        contents: tuple[str, ...],
        tree: CourseTree,
        learner: _LearnerState,
        pending: _Pending,
        result: BatchResult,
        now: int,
    ) -> None:
        """docs/jobs/progress.md for one event, on the in-memory state and the pending writes."""
        course_id, batch_id, user_id = event.learner
        # P6: the counts go up for every input content; a created row keeps a null status.
        for content_id in contents:
            key = (course_id, batch_id, user_id, content_id)
            pending.views[key] = pending.views.get(key, 0) + 1
            learner.statuses.setdefault(content_id, None)
        merged = progress.merged_statuses(learner.statuses, contents)
        done = progress.completion(tree, merged, with_units=self.settings.module_aggs.enabled)
        # P7, P8: completedCount (a double) on the course row and on every unit row.
        ctx = context_id(batch_id)
        counts = {course_id: done.progress, **done.units}
        for activity_id, n in counts.items():
            patch = pending.patches.setdefault((activity_id, user_id, ctx), MetricsPatch({}, {}))
            patch.aggregates["completedCount"] = float(n)
            patch.agg_last_updated["completedCount"] = now
        # P9
        change = progress.enrolment_change(
            exists=learner.enrolled, stored_status=learner.enrolment_status, done=done, merged=merged, now=now
        )
        if change is None:
            return
        previous = pending.enrolments.get(event.learner, {})
        # completedon is written only on completion; an earlier completion in this batch cannot be followed by a
        # rewrite (status 2 is never rewritten), so carrying it over is only for clarity.
        pending.enrolments[event.learner] = {**previous, **change.columns()}
        learner.enrolment_status = change.status
        result.counters["enrolment"] += 1
        if change.status == progress.COMPLETED:
            result.counters["enrolment_complete"] += 1
            request = issue_certificate_request(course_id=course_id, batch_id=batch_id, user_id=user_id, now=now)
            pending.certificates.append((None, orjson.dumps(request).decode()))

    def _write(self, conn: Connection, pending: _Pending, result: BatchResult) -> None:
        """One statement per table for the whole batch, in the order the API takes row locks (consumption first)."""
        writes = 0
        if pending.views:
            store.bump_consumption(conn, self.dialect, pending.views)
            writes += 1
        if pending.patches:
            scores.patch_activity_rows(conn, self.dialect, pending.patches)
            writes += 1
        if pending.enrolments:
            store.update_enrolments(conn, pending.enrolments)
            writes += 1
            # A completion moves its batch's completedCount: recounted in this transaction (docs/api.md).
            completed = [lr[:2] for lr, cols in pending.enrolments.items() if cols.get("status") == progress.COMPLETED]
            if completed:
                activity_agg.refresh(conn, self.dialect, completed, self.clock())
        if pending.dedup:
            store.store_dedup_keys(conn, self.dialect, pending.dedup)
            writes += 1
        result.counters["db_update"] += writes
        if pending.certificates:
            self.log.append(conn, self.topics.certificate_request, pending.certificates, self.clock())
            result.counters["certificate"] += len(pending.certificates)
