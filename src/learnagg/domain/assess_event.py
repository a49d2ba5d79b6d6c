"""Assessment batch events: validation (SPEC A1) and normalisation of ASSESS answers (SPEC A2)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from learnagg.domain.numbers import is_integer, is_number, is_numeric, to_double

_MANDATORY_FIELDS = ("courseId", "batchId", "userId", "contentId")


class InvalidEvent(Exception):
    """An event that fails a SPEC check; `reason` is the exact validation_error text."""

    def __init__(self, reason: str) -> None:
        """Create the error.

        Args:
            reason: The exact ``validation_error`` message of SPEC A1.
        """
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Question:
    """One normalised ASSESS answer (SPEC A2): the stored ``question`` structure of SPEC §2.2."""

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
        """Return the JSON-ready form, with keys in the order of SPEC §2.2.

        Returns:
            A new dict; ``resvalues`` and ``params`` are lists of copied maps.
        """
        return {
            "id": self.id,
            "assess_ts": self.assess_ts,
            "max_score": self.max_score,
            "score": self.score,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "duration": self.duration,
            "resvalues": [dict(m) for m in self.resvalues],
            "params": [dict(m) for m in self.params],
        }


@dataclass(frozen=True, slots=True)
class AssessmentBatchEvent:
    """A validated assessment batch event (SPEC §3.1)."""

    course_id: str
    batch_id: str
    user_id: str
    content_id: str
    attempt_id: str | None
    assessment_ts: int
    questions: tuple[Question, ...]

    @property
    def is_recompute(self) -> bool:
        """True when the event carries no answers (SPEC A4)."""
        return not self.questions


def _is_non_blank_string(value: object) -> bool:
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
    """Render every number as a double and drop null object members, at every depth (SPEC A2)."""
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


def _normalise_maps(maps: list[dict[str, object]] | None) -> tuple[dict[str, str], ...]:
    if maps is None:
        return ()
    return tuple({k: _map_value_text(v) for k, v in m.items() if v is not None} for m in maps)


def _text(value: object) -> str | None:
    """Strings kept, null/absent is None, other values become compact JSON text (SPEC A2)."""
    if value is None or isinstance(value, str):
        return value
    return _compact(value)


def _is_array_of_objects(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) for m in value)


def _parse_answer(index: int, raw: object) -> Question:
    where = f"events[{index}]"
    if not isinstance(raw, dict) or not is_integer(raw.get("ets")):
        raise InvalidEvent(f"{where}.ets must be an integer")
    edata = raw.get("edata")
    item = edata.get("item") if isinstance(edata, dict) else None
    if not isinstance(edata, dict) or not isinstance(item, dict):
        raise InvalidEvent(f"{where}.edata.item is mandatory")
    for container, key, path in (
        (edata, "score", "edata.score"),
        (edata, "duration", "edata.duration"),
        (item, "maxscore", "edata.item.maxscore"),
    ):
        value = container.get(key)
        if value is not None and not is_numeric(value):
            raise InvalidEvent(f"{where}.{path} must be numeric")
    for container, key, path in (
        (edata, "resvalues", "edata.resvalues"),
        (item, "params", "edata.item.params"),
    ):
        value = container.get(key)
        if value is not None and not _is_array_of_objects(value):
            raise InvalidEvent(f"{where}.{path} must be an array of objects")
    return Question(
        id=_text(item.get("id")),
        assess_ts=raw["ets"],
        max_score=_double(item.get("maxscore")),
        score=_double(edata.get("score")),
        type=_text(item.get("type")),
        title=_text(item.get("title")),
        description=_text(item.get("desc")),
        duration=_double(edata.get("duration")),
        resvalues=_normalise_maps(edata.get("resvalues")),
        params=_normalise_maps(item.get("params")),
    )


def parse_assessment_event(raw: object) -> AssessmentBatchEvent:
    """Validate (SPEC A1) and normalise (SPEC A2) one assessment batch event.

    Checks run in SPEC order and the first failure wins; answers are checked in array order.

    Args:
        raw: The decoded JSON message.

    Returns:
        The event with every answer normalised, in input order; no answers means a recompute.

    Raises:
        InvalidEvent: if a check fails; ``reason`` is the exact ``validation_error`` text.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("event is not a JSON object")
    for field in _MANDATORY_FIELDS:
        if not _is_non_blank_string(raw.get(field)):
            raise InvalidEvent(f"{field} is mandatory")
    assessment_ts = raw.get("assessmentTs")
    if not is_integer(assessment_ts):
        raise InvalidEvent("assessmentTs must be an integer")
    events = raw.get("events")
    if events is not None and not isinstance(events, list):
        raise InvalidEvent("events must be an array")
    attempt_id = raw.get("attemptId")
    if events and not _is_non_blank_string(attempt_id):
        raise InvalidEvent("attemptId is mandatory")
    questions = tuple(_parse_answer(i, e) for i, e in enumerate(events or ()))
    return AssessmentBatchEvent(
        course_id=raw["courseId"],
        batch_id=raw["batchId"],
        user_id=raw["userId"],
        content_id=raw["contentId"],
        attempt_id=attempt_id if isinstance(attempt_id, str) else None,
        assessment_ts=assessment_ts,  # type: ignore[arg-type]
        questions=questions,
    )
