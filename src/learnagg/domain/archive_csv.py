"""Archived assessment files (docs/batch.md#assessment-archival, docs/batch.md#exhaust-reports): partitions, names, and
writing the 12-column gzipped CSV."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from learnagg.domain.gzip_member import GzipMember

# docs/batch.md#assessment-archival, in this order.
COLUMNS = (
    "course_id",
    "batch_id",
    "user_id",
    "content_id",
    "attempt_id",
    "created_on",
    "grand_total",
    "last_attempted_on",
    "total_max_score",
    "total_score",
    "updated_on",
    "question",
)
# Keys of each archived question object, in the order docs/batch.md#assessment-archival lists them (not the stored order
# of docs/reference/data-model.md#assessment-aggregator).
QUESTION_KEYS = (
    "id",
    "assess_ts",
    "max_score",
    "score",
    "type",
    "title",
    "resvalues",
    "params",
    "description",
    "duration",
)
# The stored key order of a question (docs/reference/data-model.md#assessment-aggregator), as the assessment aggregator
# writes it.
_STORED_KEYS = (
    "id",
    "assess_ts",
    "max_score",
    "score",
    "type",
    "title",
    "description",
    "duration",
    "resvalues",
    "params",
)
JOB_ID = "assessment-archival"
RESOURCE_TYPE = "assessment"
ARCHIVAL_TABLE = "assessment_aggregator"
CHECKSUM_ALGORITHM = "sha256"

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: shifting by three days makes `(ms + shift) // WEEK_MS` count Monday-to-Monday weeks.
WEEK_SHIFT_MS = 3 * DAY_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
FLUSH_CHARS = 1 << 20  # uncompressed text buffered before it is hashed and compressed
# The reference's legacy text timestamps, `yyyy-MM-dd HH:mm:ss:SSSZ` (docs/reference/data-model.md#enrolment), which
# fromisoformat cannot read.
_SPECIAL = re.compile(r'[,"\r\n]')  # D5: a field holding one of these is quoted

Dumps = Callable[[Any], str]
Loads = Callable[[str], Any]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# -- partitions and names (docs/batch.md#assessment-archival archive mode) ----------------------------------


def md5u(text: str) -> str:
    """``MD5U(s)``: the MD5 of the UTF-8 bytes of ``text`` as 32 upper-case hex digits
    (docs/reference/data-model.md#c7)."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def request_id(collection_id: str, batch_id: str, year: int, week: int) -> str:
    """The archival request id of a partition: ``MD5U("assessment-archival:<c>:<b>:<year>:<week>")``."""
    return md5u(f"{JOB_ID}:{collection_id}:{batch_id}:{year}:{week}")


def request_data(collection_id: str, batch_id: str, year: int, week: int) -> dict[str, Any]:
    """The ``request_data`` of an `archival_metadata` row (docs/reference/data-model.md#reports-and-archival)."""
    return {
        "archivalTable": ARCHIVAL_TABLE,
        "batchId": batch_id,
        "collectionId": collection_id,
        "year": year,
        "week": week,
    }


def archive_key(prefix: str, batch_id: str, collection_id: str, year: int, week: int, epoch_ms: int) -> str:
    """``<prefix><batchId>_<collectionId>/<year>-<week>-<epochMillis>.csv.gz``; the week is not zero-padded."""
    return f"{prefix}{batch_id}_{collection_id}/{year}-{week}-{epoch_ms}.csv.gz"


def to_datetime(ms: int) -> datetime:
    """An epoch-ms instant as an aware UTC datetime (exact integer arithmetic)."""
    return _EPOCH + timedelta(milliseconds=ms)


def to_epoch_ms(moment: datetime) -> int:
    """An aware datetime (a naive one is read as UTC) as epoch ms, flooring sub-millisecond parts."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def year_week(ms: int) -> tuple[int, int]:
    """The calendar year and the ISO-8601 week number of an instant, both in UTC (2021-01-01 → (2021, 53))."""
    moment = to_datetime(ms)
    return moment.year, moment.isocalendar().week


def week_bucket(ms: int) -> int:
    """The index of the Monday-to-Monday UTC week holding ``ms`` (the SQL grouping key is the same expression)."""
    return (ms + WEEK_SHIFT_MS) // WEEK_MS


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One (year, week) period of a partition and its epoch-ms range ``[start, end)``."""

    year: int
    week: int
    start: int
    end: int


def bucket_periods(bucket: int) -> list[Period]:
    """The periods of one Monday-to-Monday week: one, or two when 1 January falls inside it.

    The year is the calendar year, not the ISO year (docs/batch.md#assessment-archival), so the days of a week before
    and after
    1 January belong to two partitions with the same week number.
    """
    start = bucket * WEEK_MS - WEEK_SHIFT_MS
    end = start + WEEK_MS
    new_year = to_epoch_ms(datetime(to_datetime(end - 1).year, 1, 1))
    bounds = [start, new_year, end] if start < new_year < end else [start, end]
    return [Period(*year_week(lo), lo, hi) for lo, hi in itertools.pairwise(bounds)]


def period_cutoff(ms: int) -> int:
    """The latest partition boundary at or before ``ms``: a Monday 00:00 or a 1 January 00:00 UTC.

    Archiving rows with ``updated_on < period_cutoff(d)`` takes whole partitions only, so `--before` never
    archives part of a week (whose remaining rows would then never be archived, docs/batch.md#assessment-archival).
    """
    monday = week_bucket(ms) * WEEK_MS - WEEK_SHIFT_MS
    return max(monday, to_epoch_ms(datetime(to_datetime(ms).year, 1, 1)))


# -- rendering (docs/batch.md#assessment-archival, docs/batch.md#exhaust-reports) --------------------------------------


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return f"{to_datetime(day * DAY_MS):%Y-%m-%d} "


def format_created_on(ms: int | None) -> str | None:
    """``created_on`` as ``yyyy-MM-dd HH:mm:ss.SSS`` in UTC; None stays None (an empty field)."""
    if ms is None:
        return None
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_text(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"


def question_json(
    questions: Sequence[Any] | str | None, dumps: Dumps = _compact_json, loads: Loads = json.loads
) -> str | None:
    """The archived ``question`` column: a compact JSON array of objects with the keys of `QUESTION_KEYS`.

    Args:
        questions: the stored list (each a dict in the stored key order), or its JSON text; None stays None.
        dumps: compact JSON encoder without ASCII escaping (the job passes a faster one).
        loads: JSON decoder for questions given as text.
    """
    if questions is None:
        return None
    if isinstance(questions, str):
        # Objects parsed here are ours: one in the stored key order (docs/reference/data-model.md#assessment-aggregator)
        # only needs `description` and `duration` moved to the end, several times cheaper than building a new dict.
        parsed = loads(questions)
        for q in parsed:
            if type(q) is dict and tuple(q) == _STORED_KEYS:
                q["description"] = q.pop("description")
                q["duration"] = q.pop("duration")
        return dumps([q if type(q) is dict and tuple(q) == QUESTION_KEYS else _reordered(q) for q in parsed])
    return dumps([_reordered(q) for q in questions])


def _reordered(question: Any) -> Any:
    return {k: question.get(k) for k in QUESTION_KEYS} if isinstance(question, dict) else question


def _field(value: Any) -> str:
    """One D5 field: None is empty; quoted only when it holds ``,``, ``"``, CR or LF; quotes doubled.

    Doubles are written as Python's float repr, always with a fraction (docs/reference/data-model.md#c4).
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    if _SPECIAL.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


def render_line(fields: Sequence[Any]) -> str:
    """One D5 CSV line, ending with LF."""
    return ",".join([_field(f) for f in fields]) + "\n"


def archive_fields(values: Sequence[Any], dumps: Dumps = _compact_json, loads: Loads = json.loads) -> list[Any]:
    """One `assessment_aggregator` row (its values in `COLUMNS` order) as the 12 CSV values.

    Returns:
        Text, integers (epoch ms), doubles or None (an empty field), in `COLUMNS` order.
    """
    course_id, batch_id, user_id, content_id, attempt_id, created, grand, last, max_score, score, updated, q = values
    return [
        course_id,
        batch_id,
        user_id,
        content_id,
        attempt_id,
        format_created_on(created),
        grand,
        last,
        None if max_score is None else float(max_score),
        None if score is None else float(score),
        updated,
        question_json(q, dumps, loads),
    ]


def archive_line(values: Sequence[Any], dumps: Dumps = _compact_json, loads: Loads = json.loads) -> str:
    """`render_line` of `archive_fields`, with a fast path for the common row (the archive's hot loop).

    The fast path applies when no text field needs quoting; the question JSON never holds a raw CR or LF.
    The question may be given as its stored JSON text: parsed here one row at a time, the objects stay
    short-lived (holding a whole chunk of parsed rows costs several times the parse itself).
    """
    course_id, batch_id, user_id, content_id, attempt_id, created, grand, last, max_score, score, updated, q = values
    grand = grand or ""
    plain = (
        type(course_id) is str
        and type(batch_id) is str
        and type(user_id) is str
        and type(content_id) is str
        and type(attempt_id) is str
        and type(grand) is str
        and (created is None or type(created) is int)
        and (last is None or type(last) is int)
        and (updated is None or type(updated) is int)
    )
    if not plain or _SPECIAL.search(f"{course_id}{batch_id}{user_id}{content_id}{attempt_id}{grand}") is not None:
        return render_line(archive_fields(values, dumps, loads))
    question = question_json(q, dumps, loads) or ""
    if '"' in question or "," in question:
        question = '"' + question.replace('"', '""') + '"'
    return (
        f"{course_id},{batch_id},{user_id},{content_id},{attempt_id},{format_created_on(created) or ''},{grand},"
        f"{'' if last is None else last},{'' if max_score is None else repr(float(max_score))},"
        f"{'' if score is None else repr(float(score))},{'' if updated is None else updated},{question}\n"
    )


@dataclass(frozen=True, slots=True)
class ArchiveDigest:
    """What identifies an archive's content: its data row count and the checksum of its uncompressed bytes."""

    rows: int
    checksum: str  # hex SHA-256 of the whole uncompressed CSV (header included): any changed byte shows


class ArchiveWriter:
    """Write one archive incrementally to a binary stream: gzip of a D5 CSV with the 12 columns.

    Memory stays flat: about `FLUSH_CHARS` of text is buffered, then hashed, compressed and written. The gzip
    header carries no name and no time, so the same rows always give the same bytes.
    """

    def __init__(
        self, out: IO[bytes], *, compresslevel: int = 1, dumps: Dumps = _compact_json, loads: Loads = json.loads
    ) -> None:
        """Start an archive on ``out`` (not closed by `close`); level 1 keeps compression off the critical path."""
        self._out = out
        self._gz = GzipMember(compresslevel)
        self._lines: list[str] = [render_line(COLUMNS)]
        self._size = 0
        self._hash = hashlib.sha256()
        self._dumps = dumps
        self._loads = loads
        self.rows = 0

    def write(self, values: Sequence[Any]) -> None:
        """Append one `assessment_aggregator` row, its values in `COLUMNS` order."""
        self.write_lines(archive_line(values, self._dumps, self._loads), 1)

    def write_lines(self, text: str, rows: int) -> None:
        """Append ``rows`` rows already rendered as D5 lines (`archive_chunks.archive_lines`)."""
        self._lines.append(text)
        self._size += len(text)
        self.rows += rows
        if self._size >= FLUSH_CHARS:
            self._flush()

    def _flush(self) -> None:
        data = "".join(self._lines).encode("utf-8")
        self._lines.clear()
        self._size = 0
        self._hash.update(data)
        self._out.write(self._gz.compress(data))

    def close(self) -> ArchiveDigest:
        """Finish the gzip stream and return the row count and checksum."""
        self._flush()
        self._out.write(self._gz.finish())
        return ArchiveDigest(self.rows, self._hash.hexdigest())
