"""Assessment batch events: validation (SPEC A1) and normalisation of ASSESS answers (SPEC A2)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

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


class Question(NamedTuple):
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
            A new dict; ``resvalues`` and ``params`` are new lists sharing the (never mutated) maps.
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
            "resvalues": list(self.resvalues),
            "params": list(self.params),
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


def _normalise_map(m: dict[str, object]) -> dict[str, str]:
    # Fast path: telemetry maps almost always hold only strings already, and the decoded map is ours to keep.
    for v in m.values():
        if type(v) is not str:
            return {k: _map_value_text(v) for k, v in m.items() if v is not None}
    return m  # type: ignore[return-value]


def _normalise_maps(maps: list[dict[str, object]] | None) -> tuple[dict[str, str], ...]:
    if maps is None:
        return ()
    return tuple(_normalise_map(m) for m in maps)


def _text(value: object) -> str | None:
    """Strings kept, null/absent is None, other values become compact JSON text (SPEC A2)."""
    if value is None or isinstance(value, str):
        return value
    return _compact(value)


def _numeric(value: object, where: str, path: str) -> float:
    """A number field of SPEC A1/A2: float/int fast, numeric text or null accepted, anything else refused."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int or value is None or (kind is str and is_numeric(value)):
        return _double(value)
    raise InvalidEvent(f"{where}.{path} must be numeric")


def _objects(value: object, where: str, path: str) -> tuple[dict[str, str], ...]:
    """An array-of-objects field of SPEC A1, normalised (SPEC A2)."""
    if value is None:
        return ()
    if type(value) is not list or not all(type(m) is dict for m in value):
        raise InvalidEvent(f"{where}.{path} must be an array of objects")
    return tuple(_normalise_map(m) for m in value)


def _parse_answer(index: int, raw: object) -> Question:
    # The hot path of the aggregator: exact-type checks first, the general rules only for unusual values.
    where = f"events[{index}]"
    if type(raw) is not dict or type(ets := raw.get("ets")) is not int:
        if not isinstance(raw, dict) or not is_integer(raw.get("ets")):
            raise InvalidEvent(f"{where}.ets must be an integer")
        ets = int(raw["ets"])
    edata = raw.get("edata")
    item = edata.get("item") if isinstance(edata, dict) else None
    if not isinstance(edata, dict) or not isinstance(item, dict):
        raise InvalidEvent(f"{where}.edata.item is mandatory")
    score = _numeric(edata.get("score"), where, "edata.score")
    duration = _numeric(edata.get("duration"), where, "edata.duration")
    max_score = _numeric(item.get("maxscore"), where, "edata.item.maxscore")
    resvalues = _objects(edata.get("resvalues"), where, "edata.resvalues")
    params = _objects(item.get("params"), where, "edata.item.params")
    qid, qtype, title, desc = item.get("id"), item.get("type"), item.get("title"), item.get("desc")
    return Question(
        qid if qid is None or type(qid) is str else _compact(qid),
        ets,
        max_score,
        score,
        qtype if qtype is None or type(qtype) is str else _compact(qtype),
        title if title is None or type(title) is str else _compact(title),
        desc if desc is None or type(desc) is str else _compact(desc),
        duration,
        resvalues,
        params,
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
