"""Cell values of the exhaust reports: shared, progress and response cells, and compact JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from learnagg.domain.dates import parse_api_ts, parse_date, start_of_day_ms, zone
from learnagg.domain.numbers import is_number, is_numeric, is_numeric_text, to_double
from learnagg.domain.progress import COMPLETED

Cell = str | None
Dumps = Callable[[Any], str]


# -- shared cells -------------------------------------------------------------------------------------------


def batch_id_cell(batch_id: str) -> str:
    """``BatchId_<batchId>`` (docs/batch.md#exhaust-reports)."""
    return f"BatchId_{batch_id}"


def score_column(content_id: str) -> str:
    """The header of a per-assessment column: ``<contentId> - Score`` (docs/batch.md#exhaust-reports)."""
    return f"{content_id} - Score"


def text_cell(value: object) -> Cell:
    """A text column: strings as they are, null empty, other JSON values as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return compact_json(value)


def report_date(ms: int | None, zone_name: str) -> str:
    """``dd/MM/yyyy`` of an epoch-ms instant in ``report.timezone``, or ``""`` (docs/batch.md#exhaust-reports
    "Dates")."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, zone(zone_name)).strftime("%d/%m/%Y")


def attempted_on(ms: int | None, zone_name: str) -> str:
    """``yyyy-MM-dd HH:mm:ss`` of an epoch-ms instant in ``report.timezone``, or ``""``
    (docs/batch.md#exhaust-reports)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S")


# -- progress report cells (docs/batch.md#exhaust-reports) -------------------------------------------------------------


def enrolment_ms(enrolled_date: int | None, enrolleddate: object, zone_name: str) -> int | None:
    """The enrolment instant: ``enrolled_date``, else the legacy ``enrolleddate`` text (docs/batch.md#exhaust-reports).

    The legacy text is read as ``yyyy-MM-dd HH:mm:ss:SSSZ`` or as a ``yyyy-MM-dd`` day in ``report.timezone``;
    other text gives None (the Enrolment Date cell is then empty).
    """
    if enrolled_date is not None:
        return enrolled_date
    ms = parse_api_ts(enrolleddate)
    if ms is not None:
        return ms
    day = parse_date(enrolleddate)
    return None if day is None else start_of_day_ms(day, zone_name)


def declared_board(board: object) -> Cell:
    """The first element when ``board`` is a JSON-array string, otherwise the raw value
    (docs/batch.md#exhaust-reports)."""
    if not isinstance(board, str) or not board.lstrip().startswith("["):
        return text_cell(board)
    try:
        parsed = json.loads(board)
    except ValueError:
        return board
    if not isinstance(parsed, list):
        return board
    return text_cell(parsed[0]) if parsed else ""


def certificate_status(certificates: object, issued_certificates: object) -> str:
    """``Issued`` when either certificate list is non-empty, otherwise ``""`` (docs/batch.md#exhaust-reports)."""
    issued = any(isinstance(v, list) and v for v in (certificates, issued_certificates))
    return "Issued" if issued else ""


def progress_percent(
    contentstatus: object, optional: Collection[str], leaf_nodes_count: int | None, completedon: int | None
) -> int:
    """The Progress column (docs/batch.md#exhaust-reports): k = ``contentstatus`` entries equal to 2 outside
    ``optional`` (``optionalNodes(course)``), N = ``leaf_nodes_count`` (null is 0). 0 when N is 0; 100 when k ≥ N or
    ``completedon`` is set; else ``floor(k/N*100 + 0.5)``."""
    if completedon is not None:
        return 100
    n = leaf_nodes_count or 0
    if n <= 0:
        return 0
    k = 0
    if isinstance(contentstatus, Mapping):
        # `status == 2` is `is_completed_status` for decoded JSON: booleans and text are never equal to 2.
        k = sum(1 for cid, status in contentstatus.items() if status == COMPLETED and cid not in optional)
    if k >= n:
        return 100
    return math.floor(k / n * 100 + 0.5)


def _ceil_percent(ratio: float) -> str:
    try:
        return f"{math.ceil(ratio)}%"
    except (OverflowError, ValueError):  # an infinite or NaN ratio (overflowing scores) has no percentage
        return ""


def percent_cell(score: float, max_score: float | None) -> str:
    """``<c> - Score``: ``ceil(score*100/max_score)%`` when max_score > 0, else ``""``
    (docs/batch.md#exhaust-reports)."""
    if max_score is None or not max_score > 0:
        return ""
    return _ceil_percent(score * 100 / max_score)


def _double(value: object) -> float | None:
    if type(value) is float:
        return value
    if is_numeric(value):
        try:
            return to_double(value)
        except OverflowError:
            return None
    return None


def merged_value(agg: Mapping[str, object] | None, aggregates: Mapping[str, object] | None, key: str) -> float | None:
    """``merged_view(agg, aggregates).get(key)`` without building the whole map
    (docs/reference/data-model.md#user-activity-agg, aggregates wins).

    The progress exhaust reads 2 keys per assessment of maps holding many more; a test checks the equality.
    """
    value = _double(aggregates.get(key)) if aggregates else None
    if value is None and agg:
        value = _double(agg.get(key))
    return value


@lru_cache(maxsize=64)
def _metric_keys(assessments: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple((c, f"score:{c}", f"max_score:{c}") for c in assessments)


def score_cells(
    agg: Mapping[str, object] | None,
    aggregates: Mapping[str, object] | None,
    assessments: tuple[str, ...],
    shown: Sequence[str],
) -> tuple[str, list[str]]:
    """Total Score and one ``<c> - Score`` cell per ``shown`` assessment of one learner (docs/batch.md#exhaust-reports
    "Scores").

    ``merged(row)`` of the course row (None maps when the learner has none); ``assessments`` is every assessment
    of the course in hierarchy order (the summing order), ``shown`` those with a column.
    """
    current = aggregates or {}
    found: dict[str, tuple[float, float | None]] = {}
    for c, score_key, max_key in _metric_keys(assessments):
        score = current.get(score_key)
        if type(score) is not float:  # the usual double first, else the general merged_view rule
            score = merged_value(agg, aggregates, score_key)
        if score is not None:
            max_score = current.get(max_key)
            found[c] = (score, max_score if type(max_score) is float else merged_value(agg, aggregates, max_key))
    sum_score = 0.0
    sum_max = 0.0
    for score, max_score in found.values():  # hierarchy order
        sum_score += score
        sum_max += 0.0 if max_score is None else max_score
    # IEEE double in exactly this order: 0.07 / 1 * 100 = 7.000000000000001 → 8% (docs/batch.md#exhaust-reports).
    total = _ceil_percent(sum_score / sum_max * 100) if found and sum_max > 0 else ""
    cells = []
    for c in shown:
        pair = found.get(c)
        if pair is None or pair[1] is None or not pair[1] > 0:
            cells.append("")
        else:
            cells.append(_ceil_percent(pair[0] * 100 / pair[1]))  # percent_cell, inlined: 2 million cells
    return total, cells


# -- response report cells --------------------------------------------------------------------------------------


def compact_json(value: Any) -> str:
    """Compact JSON without ASCII escaping (docs/batch.md#exhaust-reports)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sanitised_json(value: Any, dumps: Dumps = compact_json) -> Cell:
    """Question Options / Response (docs/batch.md#exhaust-reports): ``dumps`` (compact JSON, a faster equivalent may be
    injected), then
    drop ``\\n`` pairs, then backslashes, then ``"`` → ``'``. Null ``params``/``resvalues`` give an empty cell."""
    if value is None:
        return None
    return dumps(value).replace("\\n", "").replace("\\", "").replace('"', "'")


def double_cell(value: object) -> Cell:
    """A double as in C4 (``1.0``, ``0.33``); numeric text is read as a double; anything else is empty."""
    if type(value) is float:  # the usual case first: millions of cells
        return repr(value)
    if is_number(value):
        return repr(float(value))  # type: ignore[arg-type]
    if is_numeric_text(value):
        return repr(float(str(value).strip()))
    return None


def duration_cell(value: object) -> Cell:
    """Question Duration: half-up to an integer, written as a double (``13.5`` → ``14.0``)
    (docs/batch.md#exhaust-reports).

    Half-up (away from zero) of the double's exact value; for doubles this equals rounding their shortest decimal
    text, as the reference's BigDecimal does, because a double whose text ends in ``.5`` is exactly that value.
    """
    if type(value) is not float:
        if isinstance(value, bool) or not (is_number(value) or is_numeric_text(value)):
            return None
        value = float(value)  # type: ignore[arg-type]
    x: float = value  # type: ignore[assignment]
    if x.is_integer() or not math.isfinite(x):
        return repr(x)
    magnitude = abs(x)
    whole = math.floor(magnitude)
    rounded = whole + 1 if magnitude - whole >= 0.5 else whole  # exact: magnitude < 2**52 here
    return repr(math.copysign(float(rounded), x))
