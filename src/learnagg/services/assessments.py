"""Assessment use cases (docs/api.md#content-state-and-assessments): save and submit publish attempts; read shows
attempts and best scores.

APIs never write scores: the assessment aggregator (docs/jobs/assessment.md#attempts) does. Submit shows the learner the
score of the
attempt just sent, computed with the aggregator's own domain functions (docs/jobs/assessment.md#a5,
docs/jobs/assessment.md#a7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from learnagg.adapters.store import scores
from learnagg.app import App
from learnagg.domain.assess_event import InvalidEvent, parse_assessment_event
from learnagg.domain.bounds import NUL
from learnagg.domain.content_state import COMPLETED, ContentUpdate, assessment_event
from learnagg.domain.scoring import AttemptScore, known_total_questions, leaf_error, question_count_error, score_attempt
from learnagg.services import learner_reads, publishing
from learnagg.services.content_state import apply_content_updates, payload_json, refusal_of
from learnagg.settings import AssessmentSettings

SUBMITTED = "SUBMITTED"
INVALID = "INVALID"


def _check_attempt(
    event: Mapping[str, Any],
    leaves: Mapping[str, set[str]],
    totals: Mapping[str, int | None],
    settings: AssessmentSettings,
) -> AttemptScore | str:
    """docs/jobs/assessment.md#attempts, docs/jobs/assessment.md#a5, docs/jobs/assessment.md#a6, which only read: the
    attempt's score, or the validation_error text.

    A1 here holds every field of the attempt, including those the aggregator ignores, to the input bounds.
    """
    try:
        parsed = parse_assessment_event(event, max_questions=settings.max_questions, every_field=True)
    except InvalidEvent as exc:
        return exc.reason
    error = leaf_error(parsed, leaves.get(parsed.course_id, set()), settings.strict_leaf_validation)
    if error is not None:
        return error
    score = score_attempt(parsed.questions)
    if settings.question_count_guard:
        total = known_total_questions(totals.get(parsed.content_id))
        error = question_count_error(len(score.questions), total, parsed.content_id)
        if error is not None:
            return error
    return score


def _storable(ids: Iterable[str]) -> set[str]:
    return {i for i in ids if NUL not in i}


def send_assessments(
    app: App, *, user_id: str, assessments: Sequence[Mapping[str, Any]], now: int, submit: bool
) -> dict[str, Any]:
    """``POST /v1/assess/save`` and ``/v1/assess/submit`` (docs/api.md#content-state-and-assessments), in one write
    transaction.

    Each item is checked in order: the batch checks of docs/api.md#content-state-and-assessments, then A1–A3, A5 and A6.
    Items that pass are
    published to ``{env}.telemetry.assess``. With ``submit``, each of them also completes its content exactly
    like a docs/api.md#content-state-and-assessments status-2 item, and its result carries the attempt's own totals.

    Args:
        app: the application.
        user_id: the subject (requestedFor, otherwise the caller); it overwrites userId and every actor id.
        assessments: validated items, as sent.
        now: epoch ms of the request.
        submit: complete the contents and show the scores.

    Returns:
        ``{"assessments": [{"contentId","attemptId","batchId","status","message"?, ...totals}]}``.
    """
    settings = app.settings.assessment
    events = [assessment_event(item, user_id) for item in assessments]
    results: list[dict[str, Any]] = []
    with publishing.transaction(app) as conn:
        # An identifier holding NUL cannot be stored (PostgreSQL refuses it in a query): its batch is unknown.
        batches = learner_reads.batch_courses(conn, _storable(e["batchId"] for e in events))
        leaves = scores.leaf_nodes(conn, _storable(e["courseId"] for e in events))
        guard = settings.question_count_guard
        totals = scores.total_questions(conn, _storable(e["contentId"] for e in events)) if guard else {}
        published: list[dict[str, Any]] = []
        for event in events:
            result: dict[str, Any] = {
                "contentId": event["contentId"],
                "attemptId": event["attemptId"],
                "batchId": event["batchId"],
            }
            refusal = refusal_of(batches, event["courseId"], event["batchId"])
            outcome = refusal if refusal is not None else _check_attempt(event, leaves, totals, settings)
            if isinstance(outcome, AttemptScore):
                result["status"] = SUBMITTED
                if submit:
                    result["totalScore"] = outcome.total_score
                    result["totalMaxScore"] = outcome.total_max_score
                    result["grandTotal"] = outcome.grand_total
                published.append(event)
            elif refusal is not None:
                result["status"] = refusal
            else:
                result["status"] = INVALID
                result["message"] = outcome
            results.append(result)
        publishing.append(conn, app, app.topics.assess, [(None, payload_json(e)) for e in published], now)
        if submit:
            completions = [ContentUpdate(e["courseId"], e["batchId"], e["contentId"], COMPLETED) for e in published]
            apply_content_updates(conn, app, user_id, completions, now)
    return {"assessments": results}


def _question(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored ``question`` entry (docs/reference/data-model.md#assessment-aggregator) under the API's key names
    (docs/api.md#content-state-and-assessments)."""
    return {
        "id": stored.get("id"),
        "assessTs": stored.get("assess_ts"),
        "maxScore": stored.get("max_score"),
        "score": stored.get("score"),
        "type": stored.get("type"),
        "title": stored.get("title"),
        "description": stored.get("description"),
        "duration": stored.get("duration"),
        "resvalues": stored.get("resvalues"),
        "params": stored.get("params"),
    }


def _attempt(view: learner_reads.AttemptView, with_questions: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attemptId": view.attempt_id,
        "lastAttemptedOn": view.last_attempted_on,
        "totalScore": view.total_score,
        "totalMaxScore": view.total_max_score,
        "grandTotal": view.grand_total,
    }
    if with_questions:
        out["questions"] = [_question(q) for q in view.question or () if isinstance(q, dict)]
    return out


def read_assessments(
    app: App,
    *,
    user_id: str,
    course_id: str,
    batch_id: str,
    content_ids: Sequence[str] | None,
    with_questions: bool,
) -> dict[str, Any]:
    """``POST /v1/assess/read`` (docs/api.md#content-state-and-assessments): the learner's attempts and best score per
    content.

    Args:
        app: the application.
        user_id: the subject; only their own data is read.
        course_id: the resolved course id.
        batch_id: the resolved batch id.
        content_ids: these contents (even without attempts) when non-empty; otherwise every content with live
            attempts or a ``score:`` metric.
        with_questions: include each attempt's ``questions``.

    Returns:
        ``{"assessments": [{"contentId","bestScore","attempts"}]}`` sorted by contentId.
    """
    limit = app.settings.assessment.attempts.limit
    wanted = sorted(set(content_ids)) if content_ids else None
    with app.store.read() as conn:
        found = learner_reads.attempts(conn, user_id, course_id, batch_id, wanted, limit, questions=with_questions)
        metrics = learner_reads.course_metrics(conn, user_id, course_id, batch_id)
    ids = wanted if wanted is not None else sorted(set(found) | metrics.scored_contents())
    return {
        "assessments": [
            {
                "contentId": content_id,
                "bestScore": metrics.best_score(content_id),
                "attempts": [_attempt(view, with_questions) for view in found.get(content_id, [])],
            }
            for content_id in ids
        ]
    }
