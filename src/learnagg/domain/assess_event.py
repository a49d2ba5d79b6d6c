"""Assessment batch events: validation (docs/jobs/assessment.md#a1) and normalisation of ASSESS answers
(docs/jobs/assessment.md#a2).

Every value the aggregator reads is also held to the input bounds of `learnagg.domain.bounds`; with
``every_field`` (the APIs) the fields the aggregator ignores are held to them too (docs/threat-model.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeGuard

from learnagg.domain.bounds import (
    DEFAULT_MAX_QUESTIONS,
    MAX_ABS_NUMBER,
    MAX_TIMESTAMP_MS,
    NUL,
    NUL_RULE,
    NUMBER_RULE,
    TIMESTAMP_RULE,
    json_violation,
    number_ok,
    questions_error,
    violation,
)
from learnagg.domain.numbers import is_integer, is_number, is_numeric, to_double

_MANDATORY_FIELDS = ("courseId", "batchId", "userId", "contentId")
# The fields the aggregator reads (docs/reference/events.md#e1), per level; `every_field` also checks all the others.
_EVENT_FIELDS = frozenset((*_MANDATORY_FIELDS, "assessmentTs", "events", "attemptId"))
_ANSWER_FIELDS = frozenset(("ets", "edata"))
_EDATA_FIELDS = frozenset(("score", "duration", "resvalues", "item"))
_ITEM_FIELDS = frozenset(("id", "maxscore", "type", "title", "desc", "params"))
# How many containers enclose a value below the event: events 1, an answer 2, edata 3, item 4, params 5.
_ANSWER_LEVEL, _EDATA_LEVEL, _ITEM_LEVEL = 2, 3, 4
_MAX_ABS_INT = int(MAX_ABS_NUMBER)


class InvalidEvent(Exception):
    """An event that fails a documented check (docs/jobs/assessment.md#a1); `reason` is the exact validation_error
    text."""

    def __init__(self, reason: str, field: str | None = None, value: object = None) -> None:
        """Create the error.

        Args:
            reason: The exact ``validation_error`` message of docs/jobs/assessment.md#a1 (or of a broken input bound).
            field: The path of the offending field (``events[0].edata.score``), when the check names one.
            value: The offending value, when known (APIs show a short form of it).
        """
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.value = value


def _refuse(field: str, rule: str, value: object) -> InvalidEvent:
    return InvalidEvent(violation(field, rule), field, value)


class Question(NamedTuple):
    """One normalised ASSESS answer (docs/jobs/assessment.md#a2): the stored ``question`` structure of
    docs/reference/data-model.md#assessment-aggregator."""

    id: str | None
    assess_ts: int
    max_score: float
    score: float
    type: str | None
    title: str | None
    description: str | None
    duration: float
    resvalues: tuple[dict[str, str], ...]
    params: tuple[dict[str, str], ...]

    def to_json(self) -> dict[str, object]:
        """Return the JSON-ready form, keys in the order of an archived question (docs/batch.md#assessment-archival):
        archiving stored rows then needs no reordering, and readers give key order no meaning.

        Returns:
            A new dict; ``resvalues`` and ``params`` are new lists sharing the (never mutated) maps.
        """
        return {
            "id": self.id,
            "assess_ts": self.assess_ts,
            "max_score": self.max_score,
            "score": self.score,
            "type": self.type,
            "title": self.title,
            "resvalues": list(self.resvalues),
            "params": list(self.params),
            "description": self.description,
            "duration": self.duration,
        }


@dataclass(frozen=True, slots=True)
class AssessmentBatchEvent:
    """A validated assessment batch event (docs/reference/events.md#e1)."""

    course_id: str
    batch_id: str
    user_id: str
    content_id: str
    attempt_id: str | None
    assessment_ts: int
    questions: tuple[Question, ...]

    @property
    def is_recompute(self) -> bool:
        """True when the event carries no answers (docs/jobs/assessment.md#a4)."""
        return not self.questions


def _is_non_blank_string(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _double(value: object) -> float:
    """`to_double`, except that an integer too large for a double becomes a signed infinity."""
    try:
        return to_double(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _doubles_without_nulls(value: object) -> object:
    """Render every number as a double and drop null object members, at every depth (docs/jobs/assessment.md#a2)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if is_number(value):
        return _double(value)
    if isinstance(value, Mapping):
        return {k: _doubles_without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_doubles_without_nulls(v) for v in value]
    return value


def _map_value_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return _compact(_doubles_without_nulls(value))


def _checked_map(m: dict[str, object], field: str, level: int) -> dict[str, str]:
    """A map of ``resvalues``/``params`` (at ``level``) within the bounds, its values as text
    (docs/jobs/assessment.md#a2)."""
    rule = json_violation(m, level=level, numbers=True)
    if rule is not None:
        raise _refuse(field, rule, m)
    return {k: _map_value_text(v) for k, v in m.items() if v is not None}


def _text(value: object) -> str | None:
    """Strings kept, null/absent is None, other values become compact JSON text (docs/jobs/assessment.md#a2)."""
    if value is None or isinstance(value, str):
        return value
    return _compact(value)


def _numeric(value: object, where: str, path: str) -> float:
    """A number field (docs/jobs/assessment.md#a1, #a2): float/int fast, numeric text or null accepted, anything else
    refused.

    The number (text included) must also be finite with an absolute value of at most 1e15.
    """
    kind = type(value)
    if kind is float:
        if -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:  # type: ignore[operator]
            return value  # type: ignore[return-value]
    elif kind is int:
        if -_MAX_ABS_INT <= value <= _MAX_ABS_INT:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
    elif value is None:
        return 0.0
    elif kind is str and is_numeric(value):
        number = _double(value)
        if number_ok(number):
            return number
    else:
        raise InvalidEvent(f"{where}.{path} must be numeric", f"{where}.{path}", value)
    raise _refuse(f"{where}.{path}", NUMBER_RULE, value)


def _objects(value: object, where: str, path: str, level: int) -> tuple[dict[str, str], ...]:
    """An array-of-objects field of docs/jobs/assessment.md#a1 (the array at ``level``), normalised
    (docs/jobs/assessment.md#a2) within the bounds."""
    if value is None:
        return ()
    if type(value) is not list or not all(type(m) is dict for m in value):
        raise InvalidEvent(f"{where}.{path} must be an array of objects", f"{where}.{path}", value)
    # Fast path: telemetry maps almost always hold only NUL-free strings already, and the decoded maps are ours.
    for m in value:
        for k, v in m.items():
            if type(v) is not str or NUL in v or NUL in k:
                return tuple(_checked_map(m, f"{where}.{path}", level + 1) for m in value)
    return tuple(value)


def _item_text(value: object, where: str, name: str) -> str | None:
    """The slow path of a ``title``/``type``/``desc``/``id`` value (docs/jobs/assessment.md#a2) that is not a NUL-free
    string."""
    if value is None:
        return None
    rule = NUL_RULE if type(value) is str else json_violation(value, level=_ITEM_LEVEL + 1, numbers=True)
    if rule is not None:
        raise _refuse(f"{where}.edata.item.{name}", rule, value)
    return value if type(value) is str else _compact(value)  # type: ignore[return-value]


def _other_fields(container: dict[str, object], read: frozenset[str], prefix: str, level: int) -> None:
    """The bounds on the fields the aggregator ignores (``every_field``); ``level`` is that of their values."""
    for key, value in container.items():
        if key in read:
            continue
        field = prefix + _compact(key)[1:-1]
        rule = NUL_RULE if NUL in key else json_violation(value, level=level)
        if rule is not None:
            raise _refuse(field, rule, value)


def _parse_answer(index: int, raw: object, every_field: bool) -> Question:
    # The hot path of the aggregator: exact-type checks first, the general rules only for unusual values.
    where = f"events[{index}]"
    if type(raw) is not dict or type(ets := raw.get("ets")) is not int:
        if not isinstance(raw, dict) or not is_integer(raw.get("ets")):
            value = raw.get("ets") if isinstance(raw, dict) else raw
            raise InvalidEvent(f"{where}.ets must be an integer", f"{where}.ets", value)
        ets = int(raw["ets"])
    if not 0 <= ets <= MAX_TIMESTAMP_MS:
        raise _refuse(f"{where}.ets", TIMESTAMP_RULE, ets)
    edata = raw.get("edata")
    item = edata.get("item") if isinstance(edata, dict) else None
    if not isinstance(edata, dict) or not isinstance(item, dict):
        raise InvalidEvent(f"{where}.edata.item is mandatory", f"{where}.edata.item", item)
    score = _numeric(edata.get("score"), where, "edata.score")
    duration = _numeric(edata.get("duration"), where, "edata.duration")
    max_score = _numeric(item.get("maxscore"), where, "edata.item.maxscore")
    resvalues = _objects(edata.get("resvalues"), where, "edata.resvalues", _EDATA_LEVEL + 1)
    params = _objects(item.get("params"), where, "edata.item.params", _ITEM_LEVEL + 1)
    qid, qtype, title, desc = item.get("id"), item.get("type"), item.get("title"), item.get("desc")
    question = Question(
        qid if type(qid) is str and NUL not in qid else _item_text(qid, where, "id"),
        ets,
        max_score,
        score,
        qtype if type(qtype) is str and NUL not in qtype else _item_text(qtype, where, "type"),
        title if type(title) is str and NUL not in title else _item_text(title, where, "title"),
        desc if desc is None or (type(desc) is str and NUL not in desc) else _item_text(desc, where, "desc"),
        duration,
        resvalues,
        params,
    )
    if every_field:
        _other_fields(raw, _ANSWER_FIELDS, f"{where}.", _ANSWER_LEVEL + 1)
        _other_fields(edata, _EDATA_FIELDS, f"{where}.edata.", _EDATA_LEVEL + 1)
        _other_fields(item, _ITEM_FIELDS, f"{where}.edata.item.", _ITEM_LEVEL + 1)
    return question


def parse_assessment_event(
    raw: object, *, max_questions: int = DEFAULT_MAX_QUESTIONS, every_field: bool = False
) -> AssessmentBatchEvent:
    """Validate (docs/jobs/assessment.md#a1) and normalise (docs/jobs/assessment.md#a2) one assessment batch event,
    within the input bounds.

    Checks run in the documented order and the first failure wins; answers are checked in array order. Each bound is
    checked right after the A1 check of the same field (``assessmentTs`` an integer, then its range).

    Args:
        raw: The decoded JSON message.
        max_questions: Most answers one attempt may carry, counted before de-duplication.
        every_field: Also hold the fields the aggregator ignores to the nesting, NUL and finite-number bounds
            (the APIs do, so nothing hostile is published; the stream job reads only what it needs).

    Returns:
        The event with every answer normalised, in input order; no answers means a recompute.

    Raises:
        InvalidEvent: if a check fails; ``reason`` is the exact ``validation_error`` text.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    for field in _MANDATORY_FIELDS:
        value = raw.get(field)
        if not _is_non_blank_string(value):
            raise InvalidEvent(f"{field} is mandatory", field, value)
        if NUL in value:
            raise _refuse(field, NUL_RULE, value)
    assessment_ts = raw.get("assessmentTs")
    if not is_integer(assessment_ts):
        raise InvalidEvent("assessmentTs must be an integer", "assessmentTs", assessment_ts)
    if not 0 <= assessment_ts <= MAX_TIMESTAMP_MS:  # type: ignore[operator]
        raise _refuse("assessmentTs", TIMESTAMP_RULE, assessment_ts)
    events = raw.get("events")
    if events is not None and not isinstance(events, list):
        raise InvalidEvent("events must be an array", "events", events)
    too_many = questions_error("events", len(events or ()), max_questions)
    if too_many is not None:
        raise InvalidEvent(too_many, "events", f"{len(events or ())} answers (at most {max_questions})")
    attempt_id = raw.get("attemptId")
    if events and not _is_non_blank_string(attempt_id):
        raise InvalidEvent("attemptId is mandatory", "attemptId", attempt_id)
    if isinstance(attempt_id, str) and NUL in attempt_id:
        raise _refuse("attemptId", NUL_RULE, attempt_id)
    questions = tuple(_parse_answer(i, e, every_field) for i, e in enumerate(events or ()))
    if every_field:
        _other_fields(raw, _EVENT_FIELDS, "", 1)
    return AssessmentBatchEvent(
        course_id=raw["courseId"],
        batch_id=raw["batchId"],
        user_id=raw["userId"],
        content_id=raw["contentId"],
        attempt_id=attempt_id if isinstance(attempt_id, str) else None,
        assessment_ts=assessment_ts,  # type: ignore[arg-type]
        questions=questions,
    )
