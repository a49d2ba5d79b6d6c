"""Report rows of the exhaust jobs: the column lists, D5 CSV, progress and response report lines."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from learnagg.domain.attempt_metrics import merged_view
from learnagg.domain.report_cells import (
    Cell,
    Dumps,
    attempted_on,
    batch_id_cell,
    certificate_status,
    compact_json,
    declared_board,
    double_cell,
    duration_cell,
    enrolment_ms,
    progress_percent,
    report_date,
    sanitised_json,
    score_cells,
    score_column,
    text_cell,
)


def _names(spec: str) -> tuple[str, ...]:
    return tuple(spec.split(", "))


# The column lists exactly as docs/batch.md#exhaust-reports writes them.
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
# `users` columns of the progress report, in column order from State to User Sub Type (docs/batch.md#exhaust-reports
# "User fields").
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
    """One D5 line, ending with ``\\n`` (docs/batch.md#exhaust-reports)."""
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


# -- progress report (docs/batch.md#exhaust-reports) -------------------------------------------------------------------


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
    """A leaf is a report assessment by its content type, or by object type AND primary category
    (docs/batch.md#exhaust-reports)."""
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


# -- response report (docs/batch.md#exhaust-reports) -------------------------------------------------------------------


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
    # Live wins over archived (docs/reference/compatibility.md#11); among archived copies the latest updated_on wins.
    return (attempt.live, attempt.updated_on if attempt.updated_on is not None else -(2**63))


def learner_response_lines(
    ctx: ResponseContext,
    user_id: str,
    attempts: Iterable[AttemptRows],
    title: Callable[[str], str | None],
    dumps: Dumps = compact_json,
) -> Iterator[str]:
    """Every response report line (D5) of one learner, de-duplicated and sorted (docs/batch.md#exhaust-reports "Rows").

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
