"""Attempt history (`agg_details`): parse, merge, render and per-content score metrics
(docs/reference/data-model.md#user-activity-agg, docs/jobs/assessment.md#score-aggregation)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from learnagg.domain.numbers import finite_double, is_numeric, is_numeric_text, to_double

GRADING_METHODS = ("best", "latest", "first", "average")

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)

# English month names, independent of the process locale; "Sept" is what newer JDKs write for en-GB.
_MONTH_NAMES = "january february march april may june july august september october november december"
_MONTHS: dict[str, int] = {"sept": 9}
for _number, _name in enumerate(_MONTH_NAMES.split(), start=1):
    _MONTHS[_name] = _MONTHS[_name[:3]] = _number
del _number, _name

# Gson's default date text, e.g. "Sep 19, 2019, 11:15:29 AM" (the comma after the year is absent on Java 8).
_LEGACY_DATE = re.compile(
    r"([A-Za-z]{3,9}) (\d{1,2}), (\d{4}),? (\d{1,2}):(\d{2}):(\d{2})[ \u202f]([AaPp][Mm])",
)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of one content, as used by score aggregation (docs/jobs/assessment.md#s2)."""

    attempt_id: str
    content_id: str
    score: float
    max_score: float
    last_attempted_on: int | None  # epoch ms


@dataclass(frozen=True, slots=True)
class AttemptHistory:
    """A parsed `agg_details` list: usable records and opaque entries, each in stored order."""

    records: tuple[AttemptRecord, ...]
    opaque: tuple[str, ...]


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-standard JSON constant {name}")


# One decoder and one encoder for every entry: `json.loads`/`json.dumps` with options build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _is_non_empty_string(value: object) -> TypeGuard[str]:
    # docs/reference/data-model.md#c8: a JSON string that is not empty or whitespace-only.
    return isinstance(value, str) and value.strip() != ""


def _to_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr is the shortest text that round-trips, so 1568891729.576 scales to exactly ...576 ms.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and is_numeric_text(value):
        return Decimal(value.strip())
    return None


def _epoch_ms(value: object, factor: int) -> int | None:
    """Scale a numeric value to epoch ms, flooring any fraction; None when not numeric or outside int64."""
    number = _to_decimal(value)
    if number is None:
        return None
    with localcontext() as ctx:
        ctx.prec = max(28, len(number.as_tuple().digits) + 8)
        ms = int((number * factor).to_integral_value(rounding=ROUND_FLOOR))
    return ms if _INT64_MIN <= ms <= _INT64_MAX else None


def _legacy_date_ms(text: str, zone: ZoneInfo) -> int | None:
    """Parse legacy shape (a), e.g. ``Sep 19, 2019, 11:15:29 AM``, read in ``zone``."""
    match = _LEGACY_DATE.fullmatch(text.strip())
    if match is None:
        return None
    month_name, day, year, hour, minute, second, half = match.groups()
    month = _MONTHS.get(month_name.lower())
    hour12 = int(hour)
    if month is None or not 1 <= hour12 <= 12:
        return None
    hour24 = hour12 % 12 + (12 if half.upper() == "PM" else 0)
    try:
        moment = datetime(int(year), month, int(day), hour24, int(minute), int(second), tzinfo=zone)
    except ValueError:
        return None
    # Exact integer arithmetic; an ambiguous or skipped local time uses the offset before the transition.
    return (moment - _EPOCH) // _ONE_SECOND * 1000


def _last_attempted_on(entry: Mapping[str, object], zone: ZoneInfo) -> int | None:
    value = entry.get("last_attempted_on")
    if type(value) is int:  # the written shape: epoch ms already
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    if value is None:
        # Legacy shape (b): epoch seconds, used only when last_attempted_on is absent or null.
        return _epoch_ms(entry.get("attempted_on"), 1000)
    if isinstance(value, str) and not is_numeric_text(value):
        return _legacy_date_ms(value, zone)
    return _epoch_ms(value, 1)


def _finite(value: object) -> float | None:
    # The written shape holds doubles: those skip the general rule.
    if type(value) is float and math.isfinite(value):
        return value
    return finite_double(value)


def _parse_entry(text: str, zone: ZoneInfo) -> AttemptRecord | None:
    try:
        entry = _DECODER.decode(text) if type(text) is str else json.loads(text, parse_constant=_reject_constant)
    except (TypeError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    attempt_id = entry.get("attempt_id")
    content_id = entry.get("content_id")
    if not _is_non_empty_string(attempt_id) or not _is_non_empty_string(content_id):
        return None
    score = _finite(entry.get("score"))
    max_score = _finite(entry.get("max_score"))
    if score is None or max_score is None:
        return None
    return AttemptRecord(
        attempt_id=attempt_id,
        content_id=content_id,
        score=score,
        max_score=max_score,
        last_attempted_on=_last_attempted_on(entry, zone),
    )


def parse_agg_details(entries: Sequence[str] | None, legacy_zone: str = "UTC") -> AttemptHistory:
    """Parse a stored `agg_details` list into attempt records and opaque entries
    (docs/reference/data-model.md#user-activity-agg, docs/jobs/assessment.md#s2).

    Accepts the written shape and both legacy shapes: (a) a date string in ``last_attempted_on`` read in
    ``legacy_zone`` with second precision, and (b) ``attempted_on`` in epoch seconds. An entry that is not
    a JSON object, lacks a non-blank ``attempt_id``/``content_id`` or has a non-numeric score/max_score is
    opaque.

    Args:
        entries: The stored list; None counts as empty.
        legacy_zone: IANA zone name for legacy date strings (setting ``legacy.date_zone``).

    Returns:
        The usable records and the opaque entries (verbatim), each in stored order.

    Raises:
        ValueError: if ``legacy_zone`` is not a known time zone.
    """
    try:
        zone = ZoneInfo(legacy_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {legacy_zone!r}") from exc
    records: list[AttemptRecord] = []
    opaque: list[str] = []
    for text in entries or ():
        record = _parse_entry(text, zone)
        if record is None:
            opaque.append(text)
        else:
            records.append(record)
    return AttemptHistory(records=tuple(records), opaque=tuple(opaque))


def merge_attempts(*sources: Iterable[AttemptRecord]) -> dict[tuple[str, str], AttemptRecord]:
    """Key records by (content_id, attempt_id); a later record overlays an earlier one (docs/jobs/assessment.md#s3).

    Call as ``merge_attempts(history.records, extra, live)`` so that live rows win.

    Args:
        *sources: Record sources in increasing priority.

    Returns:
        The merged records keyed by (content_id, attempt_id).
    """
    merged: dict[tuple[str, str], AttemptRecord] = {}
    for source in sources:
        for record in source:
            merged[(record.content_id, record.attempt_id)] = record
    return merged


def _timestamp_key(record: AttemptRecord) -> tuple[bool, int]:
    # A null last_attempted_on counts as the oldest (docs/jobs/assessment.md#s4).
    return (record.last_attempted_on is not None, record.last_attempted_on or 0)


def _canonical_key(record: AttemptRecord) -> tuple[str, float, float, tuple[bool, int]]:
    # attempt_id order, with the remaining fields only to make duplicate ids deterministic.
    return (record.attempt_id, record.score, record.max_score, _timestamp_key(record))


def _pick(records: list[AttemptRecord], method: str) -> tuple[float, float]:
    # ``records`` is in attempt_id order, so max()/min() return the lowest attempt_id on a tie.
    chosen: AttemptRecord
    if method == "best":
        chosen = max(records, key=lambda r: r.score)
    elif method == "latest":
        chosen = max(records, key=_timestamp_key)
    elif method == "first":
        chosen = min(records, key=_timestamp_key)
    else:  # average
        score_sum = 0.0
        max_sum = 0.0
        for record in records:
            score_sum += record.score
            max_sum += record.max_score
        return score_sum / len(records), max_sum / len(records)
    return chosen.score, chosen.max_score


def _by_content(records: Iterable[AttemptRecord]) -> dict[str, list[AttemptRecord]]:
    groups: dict[str, list[AttemptRecord]] = {}
    for record in records:
        groups.setdefault(record.content_id, []).append(record)
    return groups


def content_metrics(records: Iterable[AttemptRecord], grading_method: str = "best") -> dict[str, float]:
    """Compute ``score:c``, ``max_score:c`` and ``attempts_count:c`` for every content c (docs/jobs/assessment.md#s4).

    Args:
        records: The merged records (one per (content_id, attempt_id)).
        grading_method: One of `GRADING_METHODS` (setting ``assessment.grading_method``).

    Returns:
        The metrics as doubles, contents in sorted order; empty when there are no records.

    Raises:
        ValueError: if ``grading_method`` is not one of `GRADING_METHODS`.
    """
    if grading_method not in GRADING_METHODS:
        raise ValueError(f"unknown grading method: {grading_method!r}")
    metrics: dict[str, float] = {}
    groups = _by_content(records)
    for content_id in sorted(groups):
        group = sorted(groups[content_id], key=_canonical_key)
        score, max_score = _pick(group, grading_method)
        metrics[f"score:{content_id}"] = score
        metrics[f"max_score:{content_id}"] = max_score
        metrics[f"attempts_count:{content_id}"] = float(len(group))
    return metrics


def render_agg_details(
    records: Iterable[AttemptRecord],
    opaque: Sequence[str] = (),
    entry_type: str = "attempt_metrics",
) -> list[str]:
    """Render the `agg_details` list to write (docs/reference/data-model.md#user-activity-agg,
    docs/jobs/assessment.md#s5).

    Args:
        records: The merged records.
        opaque: Opaque entries, appended verbatim after the records.
        entry_type: The ``type`` value (setting ``assessment.agg_details_type``).

    Returns:
        One compact JSON object per record, sorted by (content_id, attempt_id), then the opaque entries.

    Raises:
        ValueError: if a score or max_score is not finite.
    """
    ordered = sorted(records, key=lambda r: (r.content_id, r.attempt_id))
    rendered = [
        _ENCODER.encode(
            {
                "attempt_id": record.attempt_id,
                "content_id": record.content_id,
                "score": float(record.score),
                "max_score": float(record.max_score),
                "last_attempted_on": record.last_attempted_on,
                "type": entry_type,
            },
        )
        for record in ordered
    ]
    rendered.extend(opaque)
    return rendered


def latest_attempt_id(records: Iterable[AttemptRecord]) -> str:
    """Return the latest attempt id when the records cover exactly one content, else ``""``
    (docs/jobs/assessment.md#s7).

    Args:
        records: The merged records.

    Returns:
        The attempt_id with the greatest last_attempted_on (null oldest; tie → lowest attempt_id), or ``""``.
    """
    groups = _by_content(records)
    if len(groups) != 1:
        return ""
    (group,) = groups.values()
    return max(sorted(group, key=_canonical_key), key=_timestamp_key).attempt_id


def _numeric_items(values: Mapping[str, object] | None) -> Iterable[tuple[str, float]]:
    for key, value in (values or {}).items():
        if is_numeric(value):
            try:
                yield key, to_double(value)
            except OverflowError:
                continue


def merged_view(agg: Mapping[str, object] | None, aggregates: Mapping[str, object] | None) -> dict[str, float]:
    """Return ``merged(row)``: ``agg`` widened to doubles with every ``aggregates`` key overlaid
    (docs/reference/data-model.md#user-activity-agg).

    Args:
        agg: The legacy integer map; None counts as empty.
        aggregates: The current double map; None counts as empty. Its values win.

    Returns:
        The merged metrics. Non-numeric values (in either map) are skipped.
    """
    merged: dict[str, float] = dict(_numeric_items(agg))
    merged.update(_numeric_items(aggregates))
    return merged
