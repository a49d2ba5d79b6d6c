"""Report rows of the exhaust jobs: D5 CSV (SPEC §6.3), progress (§6.4) and response (§6.5) column values."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TextIO

from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.dates import parse_api_ts, parse_date, start_of_day_ms, zone
from learnagg.domain.numbers import is_number, is_numeric, is_numeric_text, to_double
from learnagg.domain.progress import COMPLETED

Cell = str | None
Dumps = Callable[[Any], str]


def _names(spec: str) -> tuple[str, ...]:
    return tuple(spec.split(", "))


# The column lists exactly as SPEC §6.4 and §6.5 write them.
PROGRESS_COLUMNS = _names(
    "Collection Id, Collection Name, Batch Id, Batch Name, User UUID, State, District, Org Name, School Id, "
    "School Name, Block Name, Cluster Name, User Type, User Sub Type, Declared Board, Enrolment Date, "
    "Completion Date, Certificate Status, Progress, Total Score"
)
RESPONSE_COLUMNS = _names(
    "Collection Id, Collection Name, Batch Id, Batch Name, User UUID, QuestionSet Id, QuestionSet Title, "
    "Attempt Id, Attempted On, Question Id, Question Type, Question Title, Question Description, "
    "Question Duration, Question Score, Question Max Score, Question Options, Question Response"
)
# `users` columns of the progress report, in column order from State to User Sub Type (SPEC §6.4 "User fields").
PROGRESS_USER_FIELDS = _names(
    "state, district, org_name, school_id, school_name, block, cluster, user_type, user_subtype"
)


# -- D5 CSV -------------------------------------------------------------------------------------------------


def csv_field(value: Cell) -> str:
    """One D5 field: null is empty; quoted (quotes doubled) only when it holds ``,``, ``"``, CR or LF."""
    if value is None:
        return ""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields: Iterable[Cell]) -> str:
    """One D5 line, ending with ``\\n`` (SPEC §6.3)."""
    return ",".join(csv_field(f) for f in fields) + "\n"


class CsvWriter:
    """Writes D5 lines to a text stream, a chunk of lines at a time (memory holds one chunk).

    Fields are checked and quoted in Python (`csv_field`): for report rows of long text fields this is faster than
    the C csv module, which also leaves a lone CR unquoted when lines end with LF.
    """

    def __init__(self, out: TextIO, chunk_lines: int = 2000) -> None:
        """Write to ``out``; lines are buffered ``chunk_lines`` at a time."""
        self._out = out
        self._chunk_lines = chunk_lines
        self._pending: list[str] = []
        self.rows = 0

    def write(self, row: Iterable[Cell]) -> None:
        """Queue one row of cells (header or data)."""
        self.write_line(csv_line(row))

    def write_line(self, line: str) -> None:
        """Queue one already encoded D5 line (ending with ``\\n``)."""
        self._pending.append(line)
        if len(self._pending) >= self._chunk_lines:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines to the stream."""
        self._out.write("".join(self._pending))
        self.rows += len(self._pending)
        self._pending.clear()


# -- shared cells -------------------------------------------------------------------------------------------


def batch_id_cell(batch_id: str) -> str:
    """``BatchId_<batchId>`` (SPEC §6.4, §6.5)."""
    return f"BatchId_{batch_id}"


def score_column(content_id: str) -> str:
    """The header of a per-assessment column: ``<contentId> - Score`` (SPEC §6.4)."""
    return f"{content_id} - Score"


def text_cell(value: object) -> Cell:
    """A text column: strings as they are, null empty, other JSON values as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    return compact_json(value)


def report_date(ms: int | None, zone_name: str) -> str:
    """``dd/MM/yyyy`` of an epoch-ms instant in ``report.timezone``, or ``""`` (SPEC §6.4 "Dates")."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, zone(zone_name)).strftime("%d/%m/%Y")


def attempted_on(ms: int | None, zone_name: str) -> str:
    """``yyyy-MM-dd HH:mm:ss`` of an epoch-ms instant in ``report.timezone``, or ``""`` (SPEC §6.5)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms // 1000, zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S")


# -- progress report (SPEC §6.4) ----------------------------------------------------------------------------


def enrolment_ms(enrolled_date: int | None, enrolleddate: object, zone_name: str) -> int | None:
    """The enrolment instant: ``enrolled_date``, else the legacy ``enrolleddate`` text (SPEC §6.3 step 7).

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
    """The first element when ``board`` is a JSON-array string, otherwise the raw value (SPEC §6.4)."""
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
    """``Issued`` when either certificate list is non-empty, otherwise ``""`` (SPEC §6.4)."""
    issued = any(isinstance(v, list) and v for v in (certificates, issued_certificates))
    return "Issued" if issued else ""


def progress_percent(
    contentstatus: object, optional: Collection[str], leaf_nodes_count: int | None, completedon: int | None
) -> int:
    """The Progress column (SPEC §6.4): k = ``contentstatus`` entries equal to 2 outside ``optional``
    (``optionalNodes(course)``), N = ``leaf_nodes_count`` (null is 0). 0 when N is 0; 100 when k ≥ N or
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
    """``<c> - Score``: ``ceil(score*100/max_score)%`` when max_score > 0, else ``""`` (SPEC §6.4)."""
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
    """``merged_view(agg, aggregates).get(key)`` without building the whole map (SPEC §2.1, aggregates wins).

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
    """Total Score and one ``<c> - Score`` cell per ``shown`` assessment of one learner (SPEC §6.4 "Scores").

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
    # IEEE double in exactly this order: 0.07 / 1 * 100 = 7.000000000000001 → 8% (SPEC §6.4).
    total = _ceil_percent(sum_score / sum_max * 100) if found and sum_max > 0 else ""
    cells = []
    for c in shown:
        pair = found.get(c)
        if pair is None or pair[1] is None or not pair[1] > 0:
            cells.append("")
        else:
            cells.append(_ceil_percent(pair[0] * 100 / pair[1]))  # percent_cell, inlined: 2 million cells
    return total, cells


def scored_assessments(
    agg: Mapping[str, object] | None, aggregates: Mapping[str, object] | None, candidates: Iterable[str]
) -> set[str]:
    """The candidates c with ``score:c`` in ``merged(row)`` (a per-assessment column appears only then)."""
    m = merged_view(agg, aggregates)
    return {c for c in candidates if f"score:{c}" in m}


def is_report_assessment(
    content_type: str | None,
    object_type: str | None,
    primary_category: str | None,
    *,
    content_types: Collection[str],
    object_types: Collection[str],
    primary_categories: Collection[str],
) -> bool:
    """A leaf is a report assessment by its content type, or by object type AND primary category (SPEC §6.4)."""
    return content_type in content_types or (object_type in object_types and primary_category in primary_categories)


@dataclass(frozen=True, slots=True)
class ProgressContext:
    """What every row of one batch's progress report shares."""

    course_id: str
    course_name: str | None
    batch_id: str
    batch_name: str | None
    zone: str
    leaf_nodes_count: int | None
    optional: frozenset[str]
    assessments: tuple[str, ...]
    shown: tuple[str, ...]

    def header(self) -> list[str]:
        """The 20 fixed columns then one ``<c> - Score`` per shown assessment."""
        return [*PROGRESS_COLUMNS, *(score_column(c) for c in self.shown)]


def progress_line(ctx: ProgressContext, learner: Mapping[str, Any]) -> str:
    """One progress report line (D5).

    Args:
        ctx: The batch's shared values.
        learner: ``userid``, ``enrolled_date``, ``enrolleddate``, ``completedon``, ``contentstatus``,
            ``certificates``, ``issued_certificates`` of the enrolment, the `PROGRESS_USER_FIELDS` and ``board`` of
            the user, and ``agg``/``aggregates`` of the course row (None when the learner has none).
    """
    total, scores = score_cells(learner["agg"], learner["aggregates"], ctx.assessments, ctx.shown)
    enrolled = enrolment_ms(learner["enrolled_date"], learner["enrolleddate"], ctx.zone)
    progress = progress_percent(learner["contentstatus"], ctx.optional, ctx.leaf_nodes_count, learner["completedon"])
    fixed = [
        ctx.course_id,
        ctx.course_name,
        batch_id_cell(ctx.batch_id),
        ctx.batch_name,
        learner["userid"],
        *[text_cell(learner[f]) for f in PROGRESS_USER_FIELDS],
        declared_board(learner["board"]),
        report_date(enrolled, ctx.zone),
        report_date(learner["completedon"], ctx.zone),
        certificate_status(learner["certificates"], learner["issued_certificates"]),
    ]
    # Progress and the score cells ("", "8%") never need quoting.
    return ",".join([csv_field(f) for f in fixed]) + f",{progress},{total}" + "".join([f",{c}" for c in scores]) + "\n"


# -- response report (SPEC §6.5) ----------------------------------------------------------------------------


def compact_json(value: Any) -> str:
    """Compact JSON without ASCII escaping (SPEC §6.5 step 1)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sanitised_json(value: Any, dumps: Dumps = compact_json) -> Cell:
    """Question Options / Response (SPEC §6.5): ``dumps`` (compact JSON, a faster equivalent may be injected), then
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
    """Question Duration: half-up to an integer, written as a double (``13.5`` → ``14.0``) (SPEC §6.5).

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


@dataclass(frozen=True, slots=True)
class ResponseContext:
    """What every row of one batch's response report shares."""

    course_id: str
    course_name: str | None
    batch_id: str
    batch_name: str | None
    zone: str


@dataclass(frozen=True, slots=True)
class AttemptRows:
    """One stored attempt of one learner, live or archived."""

    content_id: str
    attempt_id: str
    last_attempted_on: int | None
    updated_on: int | None
    questions: Sequence[Mapping[str, Any]] | None
    live: bool


def _rank(attempt: AttemptRows) -> tuple[bool, int]:
    # Live wins over archived (SPEC §7 #11); among archived copies the latest updated_on wins.
    return (attempt.live, attempt.updated_on if attempt.updated_on is not None else -(2**63))


def learner_response_lines(
    ctx: ResponseContext,
    user_id: str,
    attempts: Iterable[AttemptRows],
    title: Callable[[str], str | None],
    dumps: Dumps = compact_json,
) -> Iterator[str]:
    """Every response report line (D5) of one learner, de-duplicated and sorted (SPEC §6.5 "Rows").

    Args:
        ctx: The batch's shared values.
        user_id: The learner.
        attempts: The learner's live and archived attempts of the batch, in any order.
        title: The content name of a content id (QuestionSet Title); None gives ``""``.
        dumps: Compact JSON serialiser for Options / Response.

    Yields:
        One line per question, keyed on (attempt_id, question id), live rows winning; one line with empty question
        fields for an attempt without questions. Sorted by (QuestionSet Id, Attempt Id, Question Id).
    """
    # (attempt_id, question id) → (rank, attempt, question, question id as sortable text).
    best: dict[tuple[str, str | None], tuple[tuple[bool, int], AttemptRows, Mapping[str, Any] | None, str | None]] = {}
    for attempt in attempts:
        rank = _rank(attempt)
        for q in attempt.questions or (None,):
            qid = None if q is None else q.get("id")
            if qid is not None and not isinstance(qid, str):
                qid = compact_json(qid)
            key = (attempt.attempt_id, qid)
            held = best.get(key)
            if held is None or rank > held[0]:
                best[key] = (rank, attempt, q, qid)
    chosen = sorted(best.values(), key=lambda v: (v[1].content_id, v[1].attempt_id, v[3] is not None, v[3] or ""))
    head = [ctx.course_id, ctx.course_name, batch_id_cell(ctx.batch_id), ctx.batch_name, user_id]
    leads: dict[int, str] = {}  # the first nine fields, encoded once per attempt
    for _, attempt, q, _qid in chosen:
        lead = leads.get(id(attempt))
        if lead is None:
            when = attempted_on(attempt.last_attempted_on, ctx.zone)
            cells = [*head, attempt.content_id, title(attempt.content_id) or "", attempt.attempt_id, when]
            lead = leads[id(attempt)] = ",".join([csv_field(c) for c in cells])
        if q is None:
            yield lead + ",,,,,,,,,\n"
            continue
        get = q.get
        # Doubles never need quoting; sanitised JSON holds no quote, CR or LF (JSON escapes them, step 2 removes
        # the backslashes and quotes), so only a comma makes it quoted.
        yield (
            f"{lead},{csv_field(text_cell(get('id')))},{csv_field(text_cell(get('type')))},"
            f"{csv_field(text_cell(get('title')))},{csv_field(text_cell(get('description')))},"
            f"{duration_cell(get('duration')) or ''},{double_cell(get('score')) or ''},"
            f"{double_cell(get('max_score')) or ''},{_comma_quoted(sanitised_json(get('params'), dumps))},"
            f"{_comma_quoted(sanitised_json(get('resvalues'), dumps))}\n"
        )


def _comma_quoted(text: str | None) -> str:
    if text is None:
        return ""
    return f'"{text}"' if "," in text else text
