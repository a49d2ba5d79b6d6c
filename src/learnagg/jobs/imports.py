"""`learnagg import`: cqlsh COPY TO exports of the reference tables and the reference's archived assessment files."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import os
import sys
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, Any, cast

import orjson
from sqlalchemy import Connection, Table, or_

from learnagg import bootstrap
from learnagg.adapters.store import tables
from learnagg.adapters.store.dialects import Dialect
from learnagg.domain.cql_literals import CqlType, decode_column, parse_timestamp, parse_type, user_type
from learnagg.domain.dates import parse_api_ts, parse_date, start_of_day_ms
from learnagg.errors import InputError
from learnagg.services.group_cache import invalidate_for_users

CHUNK_ROWS = 5000
# One `question` list of a long assessment can exceed the csv module's default field limit (128 KiB).
_FIELD_LIMIT = 64 * 1024 * 1024


def _pairs(layout: str) -> list[tuple[str, str]]:
    """``name type; name type; …`` (a CREATE TABLE column list, `;`-separated) as (name, type) pairs."""
    return [(c.split(None, 1)[0], c.split(None, 1)[1]) for c in layout.split(";") if c.strip()]


# SPEC §2.2: the reference's `question` user type, fields in declaration order.
QUESTION = user_type(
    "question",
    _pairs(
        "id text; assess_ts timestamp; max_score double; score double; type text; title text; "
        "resvalues list<frozen<map<text, text>>>; params list<frozen<map<text, text>>>; description text; "
        "duration double"
    ),
)
_UDTS = {"question": QUESTION}
# The key order of a stored question: the order the assessment aggregator writes (Question.to_json).
_QUESTION_KEYS = ("id", "assess_ts", "max_score", "score", "type", "title", "description", "duration")
_QUESTION_LISTS = ("resvalues", "params")


class BadRecord(ValueError):
    """A record that cannot be imported; the caller adds the file name and line number."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column as the export names it, how to decode its field, and whether our table stores it."""

    name: str
    decode: Callable[[str], Any]
    stored: bool = True


@dataclass(frozen=True, slots=True)
class Fallback:
    """Fill ``target`` from a legacy text column when the file gives no value for it (old reference rows)."""

    target: str
    source: str
    convert: Callable[[str, str], int]  # (text, zone) -> epoch ms


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one importable file kind maps onto one of our tables."""

    name: str
    table: Table
    keys: tuple[str, ...]
    columns: tuple[Column, ...]  # the reference layout, in cqlsh's default column order
    dialect: str = "cqlsh"  # "cqlsh" or "d5"
    fallbacks: tuple[Fallback, ...] = ()
    newer_wins: bool = False

    def column(self, name: str) -> Column | None:
        """The column of this name (case-insensitive), or None."""
        lower = name.lower()
        return next((c for c in self.columns if c.name == lower), None)


@dataclass
class ImportResult:
    """What one import did, for the summary line and ``--json``."""

    table: str
    file: str
    header: bool
    columns: list[str]
    ignored_columns: list[str]
    records: int = 0
    rows_written: int = 0
    users: set[str] = field(default_factory=set, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary."""
        return {k: v for k, v in asdict(self).items() if k != "users"}


# --- decoders --------------------------------------------------------------------------------------------------------


def _cql(type_text: str) -> Callable[[str], Any]:
    cql_type: CqlType = parse_type(type_text, _UDTS)
    return lambda raw: decode_column(raw, cql_type)


def _stored_question(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A question in the shape the assessment aggregator stores; Cassandra does not tell an empty list from null."""
    out = {k: fields.get(k) for k in _QUESTION_KEYS}
    for k in _QUESTION_LISTS:
        out[k] = fields.get(k) or []
    return out


def _cql_questions(raw: str) -> list[dict[str, Any]]:
    value = decode_column(raw, _QUESTION_LIST)
    return [_stored_question(q) for q in value or []]


_QUESTION_LIST = parse_type("list<frozen<question>>", _UDTS)


def _plain_text(raw: str) -> str | None:
    return raw if raw != "" else None


def _ms(raw: str) -> int | None:
    """Epoch ms or a timestamp text (SPEC §6.2 delete step 1 accepts both), ``yyyy-MM-dd HH:mm:ss:SSSZ`` too."""
    text = raw.strip()
    if text == "":
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return parse_timestamp(text)
    except ValueError:
        legacy = parse_api_ts(text)
        if legacy is None:
            raise
        return legacy


def _finite(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number")
    return number


def _double(raw: str) -> float | None:
    if raw.strip() == "":
        return None
    try:
        return _finite(float(raw), "value")
    except ValueError as exc:
        raise ValueError(f"not a number: {raw!r}") from exc


def _json_question(index: int, item: object) -> dict[str, Any]:
    where = f"question[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not a JSON object")
    unknown = sorted(set(item) - set(_QUESTION_KEYS) - set(_QUESTION_LISTS))
    if unknown:
        raise ValueError(f"{where} has unknown field {unknown[0]!r}")
    out = dict(item)
    for k in ("id", "type", "title", "description"):
        if out.get(k) is not None and not isinstance(out[k], str):
            raise ValueError(f"{where}.{k} is not text")
    for k in ("max_score", "score", "duration"):
        out[k] = _finite(out.get(k), f"{where}.{k}")
    stamp = out.get("assess_ts")
    if isinstance(stamp, str):
        out["assess_ts"] = parse_timestamp(stamp)
    elif stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
        raise ValueError(f"{where}.assess_ts is not epoch ms or a timestamp")
    for k in _QUESTION_LISTS:
        value = out.get(k)
        if value is not None and not (isinstance(value, list) and all(isinstance(m, dict) for m in value)):
            raise ValueError(f"{where}.{k} is not a list of objects")
    return _stored_question(out)


def _json_questions(raw: str) -> list[dict[str, Any]]:
    if raw.strip() == "":
        return []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(value, list):
        raise ValueError("not a JSON array")
    return [_json_question(i, q) for i, q in enumerate(value)]


def _legacy_day(text: str, zone: str) -> int:
    day = parse_date(text)
    if day is None:
        raise ValueError(f"not a yyyy-MM-dd date: {text!r}")
    return start_of_day_ms(day, zone)  # as `learnagg load batches` stores batch dates


def _legacy_ts(text: str, _zone: str) -> int:
    ms = parse_api_ts(text)
    if ms is None:
        raise ValueError(f"not a yyyy-MM-dd HH:mm:ss:SSSZ date: {text!r}")
    return ms


# --- the file kinds --------------------------------------------------------------------------------------------------


def _cqlsh(name: str, layout: str, keys: int, legacy: Sequence[str] = (), **extra: Any) -> TableSpec:
    """A reference table from ``name type; …`` in cqlsh's default column order: keys, then the rest by name."""
    pairs = _pairs(layout)
    columns = tuple(Column(n, _cql_questions if n == "question" else _cql(t), stored=n not in legacy) for n, t in pairs)
    return TableSpec(name, tables.metadata.tables[name], tuple(n for n, _ in pairs[:keys]), columns, **extra)


_LIST_OF_MAPS = "list<frozen<map<text, text>>>"
SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _cqlsh(
            "user_activity_agg",
            "activity_type text; activity_id text; user_id text; context_id text; agg map<text, int>; "
            "agg_details list<text>; agg_last_updated map<text, timestamp>; aggregates map<text, double>",
            keys=4,
        ),
        _cqlsh(
            "assessment_aggregator",
            "user_id text; course_id text; batch_id text; content_id text; attempt_id text; created_on timestamp; "
            "grand_total text; last_attempted_on timestamp; question list<frozen<question>>; "
            "total_max_score double; total_score double; updated_on timestamp",
            keys=5,
        ),
        _cqlsh(
            "user_enrolments",
            f"userid text; courseid text; batchid text; active boolean; addedby text; certificates {_LIST_OF_MAPS}; "
            "certstatus int; completedon timestamp; completionpercentage int; contentstatus map<text, int>; "
            "datetime timestamp; enrolled_date timestamp; enrolleddate text; "
            f"issued_certificates {_LIST_OF_MAPS}; lastcontentaccesstime timestamp; lastreadcontentid text; "
            "lastreadcontentstatus int; progress int; status int",
            keys=3,
        ),
        _cqlsh(
            "user_content_consumption",
            "userid text; courseid text; batchid text; contentid text; completedcount int; "
            "completionpercentage double; datetime timestamp; last_access_time timestamp; "
            "last_completed_time timestamp; last_updated_time timestamp; lastaccesstime text; "
            "lastcompletedtime text; lastupdatedtime text; progress int; progressdetails text; status int; "
            "viewcount int",
            keys=4,
        ),
        _cqlsh(
            "course_batch",
            "courseid text; batchid text; cert_templates map<text, frozen<map<text, text>>>; "
            "created_date timestamp; createdby text; createddate text; createdfor list<text>; description text; "
            "end_date timestamp; enddate text; enrollment_enddate timestamp; enrollmentenddate text; "
            "enrollmenttype text; mentors list<text>; name text; start_date timestamp; startdate text; "
            "status int; updated_date timestamp; updateddate text",
            keys=2,
            # The legacy text dates of older reference rows: read only to fill an absent timestamp.
            legacy=("createddate", "enddate", "enrollmentenddate", "startdate", "updateddate"),
            fallbacks=(
                Fallback("start_date", "startdate", _legacy_day),
                Fallback("end_date", "enddate", _legacy_day),
                Fallback("enrollment_enddate", "enrollmentenddate", _legacy_day),
                Fallback("created_date", "createddate", _legacy_ts),
                Fallback("updated_date", "updateddate", _legacy_ts),
            ),
        ),
        # SPEC §6.2 step 3: the archive layout (D5 CSV, SPEC §6.3), in its column order.
        TableSpec(
            "archived-assessments",
            tables.assessment_aggregator,
            ("user_id", "course_id", "batch_id", "content_id", "attempt_id"),
            (
                *(Column(n, _plain_text) for n in ("course_id", "batch_id", "user_id", "content_id", "attempt_id")),
                Column("created_on", _ms),
                Column("grand_total", _plain_text),
                Column("last_attempted_on", _ms),
                Column("total_max_score", _double),
                Column("total_score", _double),
                Column("updated_on", _ms),
                Column("question", _json_questions),
            ),
            dialect="d5",
            newer_wins=True,
        ),
    )
}
TABLE_NAMES = tuple(SPECS)


# --- reading ---------------------------------------------------------------------------------------------------------


@contextmanager
def _open_binary(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as fh:
        yield fh


def _reader(text: IO[str], dialect: str) -> Iterator[list[str]]:
    if dialect == "cqlsh":
        # cqlsh's COPY dialect: quote ", escape \ and (because they differ) no doubled quotes.
        return csv.reader(text, delimiter=",", quotechar='"', escapechar="\\", doublequote=False, strict=True)
    return csv.reader(text, strict=True)  # D5 (SPEC §6.3): RFC 4180, embedded quotes doubled


def _records(raw: IO[bytes], path: str, dialect: str) -> Generator[tuple[int, list[str]], None, None]:
    """(first line number, fields) of every non-blank record; a gzip stream is unpacked on the fly."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(Any, raw))
    data: Any = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == b"\x1f\x8b" else buffered
    text = io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    reader = _reader(text, dialect)
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    line = 0
    try:
        while True:
            start = line + 1
            try:
                record = next(reader, None)
            except csv.Error as exc:
                raise InputError(f"{path}:{start}: not valid CSV: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{start}: not UTF-8 text") from exc
            except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
                raise InputError(f"{path}:{start}: cannot read: {exc}") from exc
            if record is None:
                return
            line = reader.line_num  # type: ignore[attr-defined]
            if len(record) > 1 or (record and record[0].strip()):  # blank lines carry no record
                yield start, record
    finally:
        text.detach()  # the caller owns (and closes) the file; a collected wrapper would close it


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which field of a record feeds which column, decided once from the header (or the default layout)."""

    fields: tuple[tuple[int, Column], ...]
    width: int
    written: tuple[str, ...]  # our columns written for every row, keys first
    fallbacks: tuple[Fallback, ...]


def _plan(spec: TableSpec, names: Sequence[str], where: str) -> tuple[_Plan, list[str]]:
    """Map the named fields onto the spec; unknown names are ignored (and returned), a missing key is refused."""
    fields: list[tuple[int, Column]] = []
    ignored: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        lower = name.strip().lower()
        if lower in seen:
            raise InputError(f"{where}: column {lower!r} appears twice")
        seen.add(lower)
        column = spec.column(lower)
        if column is None:
            ignored.append(lower)
        else:
            fields.append((index, column))
    missing = [k for k in spec.keys if k not in seen]
    if missing:
        raise InputError(f"{where}: key column {missing[0]!r} is missing")
    fallbacks = tuple(f for f in spec.fallbacks if f.source in seen)
    stored = [c.name for _, c in fields if c.stored]
    targets = [f.target for f in fallbacks if f.target not in stored]
    written = (*spec.keys, *(c for c in [*stored, *targets] if c not in spec.keys))
    return _Plan(tuple(fields), len(names), written, fallbacks), ignored


def _row(plan: _Plan, spec: TableSpec, record: Sequence[str], zone: str) -> dict[str, Any]:
    if len(record) != plan.width:
        raise BadRecord(f"expected {plan.width} fields, found {len(record)}")
    values: dict[str, Any] = {}
    for index, column in plan.fields:
        try:
            values[column.name] = column.decode(record[index])
        except ValueError as exc:  # CqlSyntaxError is a ValueError and names its offset
            raise BadRecord(f"column {column.name}: {exc}") from exc
    for key in spec.keys:
        if values[key] is None:
            values[key] = ""  # an empty key field is the empty string: keys are never null
    for fallback in plan.fallbacks:
        legacy = values.get(fallback.source)
        if values.get(fallback.target) is None and legacy is not None:
            try:
                values[fallback.target] = fallback.convert(legacy, zone)
            except ValueError as exc:
                raise BadRecord(f"column {fallback.source}: {exc}") from exc
    return {name: values.get(name) for name in plan.written}


# --- writing ---------------------------------------------------------------------------------------------------------


def _statement(dialect: Dialect, spec: TableSpec, written: Sequence[str]) -> Any:
    replace = [c for c in written if c not in spec.keys]
    if not spec.newer_wins or not replace:
        return dialect.upsert(spec.table, replace=replace)
    table = spec.table
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    # SPEC §7 #11: a live row rewritten after it was archived wins over the archived copy.
    newer = or_(table.c.updated_on.is_(None), table.c.updated_on <= stmt.excluded.updated_on)
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in replace}, where=newer)


def _flush(conn: Connection, stmt: Any, chunk: dict[tuple[Any, ...], dict[str, Any]]) -> int:
    # Keyed by primary key: one INSERT … ON CONFLICT may not touch a row twice (PostgreSQL), the later line wins.
    if chunk:
        conn.execute(stmt, list(chunk.values()))
    count = len(chunk)
    chunk.clear()
    return count


Progress = Callable[[int, int], None]  # (records read, bytes read)


def import_file(
    app: bootstrap.App,
    table: str,
    path: str,
    *,
    columns: Sequence[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> ImportResult:
    """Import one export file into its table, all or nothing, in one write transaction.

    - Dialect: cqlsh exports use cqlsh's CSV options (QUOTE ", ESCAPE \\, no doubled quotes) and cqlsh literals;
      archived assessment files are D5 CSV with ``question`` as JSON. Either may be gzipped.
    - Header: the first record is a header when it names every key column (cqlsh HEADER=TRUE); columns this table
      does not store are ignored and reported. Without a header the file holds the reference layout in cqlsh's
      default order (keys, then the others by name) or ``columns``; a record of another width is refused.
    - All or nothing: chunks of ``chunk_rows`` rows upserted with executemany in one transaction; the first bad
      record raises ``FILE:LINE: reason`` and nothing is written. Re-importing a file gives the same rows.
    - Upsert: only the file's columns are written, other columns of an existing row are kept. An empty field is
      null, except in a key column where it is the empty string (keys are never null). An archived row never
      replaces a live row with a later ``updated_on`` (SPEC §7 #11: the live row wins).
    - Score metrics are not recomputed (`learnagg migrate scores` does that).

    Args:
        app: the application (store, settings, cache).
        table: a key of :data:`SPECS`.
        path: the file, or ``-`` for standard input; gzip is detected.
        columns: the column names of a file without a header row (cqlsh's ``COPY table (a, b) TO``).
        chunk_rows: rows per executemany.
        progress: called with (records, bytes read) after each chunk.

    Raises:
        InputError: an unknown table, an unreadable file or a bad record (``FILE:LINE: reason``).
    """
    spec = SPECS.get(table)
    if spec is None:
        raise InputError(f"unknown table {table!r}: choose one of {', '.join(TABLE_NAMES)}")
    if chunk_rows < 1:
        raise InputError("--chunk-rows must be at least 1")
    zone = app.settings.timezone
    track_users = table == "user_activity_agg" and app.cache.enabled
    with _open_binary(path) as raw, closing(_records(raw, path, spec.dialect)) as records:
        first = next(records, None)
        has_header = columns is None and first is not None and _names_keys(spec, first[1])
        if has_header and first is not None:
            names: Sequence[str] = first[1]
            where = f"{path}:{first[0]}"
        else:
            names = list(columns) if columns is not None else [c.name for c in spec.columns]
            where = "--columns" if columns is not None else path
        plan, ignored = _plan(spec, names, where)
        result = ImportResult(table, path, has_header, list(plan.written), ignored)
        pending = [] if has_header or first is None else [first]
        stmt = _statement(app.store.dialect, spec, plan.written)
        key_names = spec.keys
        with app.store.write() as conn:
            chunk: dict[tuple[Any, ...], dict[str, Any]] = {}
            for line, record in itertools.chain(pending, records):
                try:
                    row = _row(plan, spec, record, zone)
                except BadRecord as exc:
                    hint = "" if has_header or columns is not None else " (no header row: see --columns)"
                    raise InputError(f"{path}:{line}: {exc}{hint}") from exc
                chunk[tuple(row[k] for k in key_names)] = row
                result.records += 1
                if track_users:
                    result.users.add(row["user_id"])
                if len(chunk) >= chunk_rows:
                    result.rows_written += _flush(conn, stmt, chunk)
                    if progress is not None:
                        progress(result.records, _position(raw))
            result.rows_written += _flush(conn, stmt, chunk)
        if progress is not None:
            progress(result.records, _position(raw))
    if result.users:
        # SPEC §5.4 step 3: cached group aggregates of these learners are stale now (after commit).
        invalidate_for_users(app.store, app.cache, result.users)
    return result


def _names_keys(spec: TableSpec, record: Sequence[str]) -> bool:
    """A header row names every key column (a data row holding those exact texts in every key is not credible)."""
    names = {f.strip().lower() for f in record}
    return all(k in names for k in spec.keys)


def _position(raw: IO[bytes]) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):  # a pipe
        return 0
