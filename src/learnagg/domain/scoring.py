"""Attempt scoring: de-duplication (docs/jobs/assessment.md#a5), question-count guard (docs/jobs/assessment.md#a6) and
totals (docs/jobs/assessment.md#a7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from learnagg.domain.assess_event import AssessmentBatchEvent, Question
from learnagg.domain.numbers import fmt2, truncated_int


@dataclass(frozen=True, slots=True)
class AttemptScore:
    """The scored attempt: kept questions sorted by id and their totals (docs/jobs/assessment.md#a7)."""

    questions: tuple[Question, ...]
    total_score: float
    total_max_score: float
    grand_total: str


def _id_key(question: Question) -> tuple[bool, str]:
    # Null first, then ascending code point (docs/reference/data-model.md#c6).
    return (question.id is not None, question.id or "")


def deduplicate(questions: Sequence[Question]) -> list[Question]:
    """Keep one answer per question id (docs/jobs/assessment.md#a5).

    Answers are grouped by id (all ``None`` ids form one group); each group keeps the answer with the
    largest ``assess_ts``, the first in input order on a tie.

    Args:
        questions: Normalised answers in input order.

    Returns:
        The kept answers sorted by id, ``None`` first, then ascending code point.
    """
    kept: dict[str | None, Question] = {}
    for question in questions:
        current = kept.get(question.id)
        if current is None or question.assess_ts > current.assess_ts:
            kept[question.id] = question
    return sorted(kept.values(), key=_id_key)


def score_attempt(questions: Sequence[Question]) -> AttemptScore:
    """De-duplicate the answers (docs/jobs/assessment.md#a5) and total them (docs/jobs/assessment.md#a7).

    Args:
        questions: Normalised answers in input order.

    Returns:
        The kept questions and sums that start at 0.0 and add in the sorted order.
    """
    kept = deduplicate(questions)
    total_score = 0.0
    total_max_score = 0.0
    for question in kept:
        total_score += question.score
        total_max_score += question.max_score
    return AttemptScore(
        questions=tuple(kept),
        total_score=total_score,
        total_max_score=total_max_score,
        grand_total=f"{fmt2(total_score)}/{fmt2(total_max_score)}",
    )


def known_total_questions(value: object) -> int | None:
    """Interpret a content's ``totalQuestions`` (docs/jobs/assessment.md#a6).

    Args:
        value: The stored value: any JSON value or ``None``.

    Returns:
        The value with its fraction truncated when it is a number or numeric string and that is positive;
        otherwise ``None`` (unknown), which includes 0, negatives, booleans, blanks and non-numeric text.
        A value that does not fit a signed 64-bit integer (or is not finite) is also unknown.
    """
    truncated = truncated_int(value)
    return truncated if truncated is not None and truncated > 0 else None


def question_count_error(kept: int, total_questions: int | None, content_id: str) -> str | None:
    """Return the question-count guard failure (docs/jobs/assessment.md#a6), if any.

    Args:
        kept: The number of questions kept after de-duplication.
        total_questions: The known ``totalQuestions`` (see `known_total_questions`), or ``None`` if unknown.
        content_id: The assessment's content id.

    Returns:
        The ``validation_error`` text when the count is known and exceeded, else ``None``.
    """
    if total_questions is not None and kept > total_questions:
        return f"question count {kept} exceeds totalQuestions {total_questions} for content {content_id}"
    return None


def leaf_error(event: AssessmentBatchEvent, leaves: set[str], strict: bool) -> str | None:
    """docs/jobs/assessment.md#a3: the content must be a leaf of the course; unknown leaves are fail-open unless
    strict."""
    if leaves:
        if event.content_id not in leaves:
            return f"contentId {event.content_id} is not a leaf node of course {event.course_id}"
        return None
    return f"leaf nodes not found for course {event.course_id}" if strict else None
