"""The importable file kinds of `learnagg import`: the reference tables' column layouts and field decoders."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table

from learnagg.adapters.store import tables
from learnagg.domain import bounds
from learnagg.domain.cql_lexer import parse_timestamp
from learnagg.domain.cql_literals import decode_column
from learnagg.domain.cql_types import CqlType, parse_type, user_type
from learnagg.domain.dates import parse_api_ts, parse_date, start_of_day_ms
from learnagg.domain.numbers import is_numeric_text


def _pairs(layout: str) -> list[tuple[str, str]]:
    """``name type; name type; …`` (a CREATE TABLE column list, `;`-separated) as (name, type) pairs."""
    return [(c.split(None, 1)[0], c.split(None, 1)[1]) for c in layout.split(";") if c.strip()]


# docs/reference/data-model.md#assessment-aggregator: the reference's `question` user type, fields in declaration order.
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


# --- bounds ----------------------------------------------------------------------------------------------------------
# Every imported value keeps the project's input bounds (docs/threat-model.md): numbers finite within 1e15, CQL
# `int` values within 32 bits (the columns are 32-bit integers), timestamps epoch ms in [0, 253402300799999],
# digits ASCII only, no NUL character in any text. A value outside is a bad record, never a database error.

_INT32 = 2**31
INT_RULE = "must be an integer between -2147483648 and 2147483647 (CQL int)"
_MAX_DIGITS = 20  # more digits than any bounded epoch-ms value (leading zeros included): refused unconverted


def _refuse(value: object, rule: str) -> ValueError:
    return ValueError(bounds.violation(bounds.short_text(value), rule))


def _text(value: str) -> str:
    _check_text(value)
    return value


def _timestamp(ms: int, raw: object) -> int:
    if not bounds.timestamp_ok(ms):
        raise _refuse(raw, bounds.TIMESTAMP_RULE)
    return ms


Check = Callable[[Any], None]  # raises ValueError for the first value outside the bounds; None always passes


def _check_text(value: Any) -> None:
    if value is not None and "\x00" in value:
        raise ValueError(bounds.violation("text", bounds.NUL_RULE))


def _check_int(value: Any) -> None:
    if value is not None and not -_INT32 <= value < _INT32:
        raise _refuse(value, INT_RULE)


def _check_double(value: Any) -> None:
    if value is not None and not -bounds.MAX_ABS_NUMBER <= value <= bounds.MAX_ABS_NUMBER:
        raise _refuse(value, bounds.NUMBER_RULE)


def _check_timestamp(value: Any) -> None:
    if value is not None and not 0 <= value <= bounds.MAX_TIMESTAMP_MS:
        raise _refuse(value, bounds.TIMESTAMP_RULE)


def _check_nothing(value: Any) -> None:
    return None


_SCALAR_CHECKS: dict[str, Check] = {
    "text": _check_text,
    "int": _check_int,
    "double": _check_double,
    "timestamp": _check_timestamp,
    "boolean": _check_nothing,
}


def _checker(cql_type: CqlType) -> Check:
    """The check of decoded values of one type, built once per column: this runs for every field of an import."""
    name = cql_type.name
    if name in _SCALAR_CHECKS:
        return _SCALAR_CHECKS[name]
    if name in ("list", "set"):
        item = _checker(cql_type.params[0])

        def check_items(value: Any) -> None:
            for v in value or ():
                item(v)

        return check_items
    if name == "map":
        key, item = _checker(cql_type.params[0]), _checker(cql_type.params[1])

        def check_map(value: Any) -> None:
            for k, v in (value or {}).items():
                key(k)
                item(v)

        return check_map
    fields = [(f, c) for f, t in cql_type.fields if (c := _checker(t)) is not _check_nothing]

    def check_udt(value: Any) -> None:
        if value is not None:
            for f, c in fields:
                c(value[f])

    return check_udt


# --- decoders --------------------------------------------------------------------------------------------------------


def _cql(type_text: str) -> Callable[[str], Any]:
    cql_type: CqlType = parse_type(type_text, _UDTS)
    check = _checker(cql_type)

    def decode(raw: str) -> Any:
        value = decode_column(raw, cql_type)
        check(value)
        return value

    return decode


def _stored_question(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A question in the shape the assessment aggregator stores; Cassandra does not tell an empty list from null."""
    out = {k: fields.get(k) for k in _QUESTION_KEYS}
    for k in _QUESTION_LISTS:
        out[k] = fields.get(k) or []
    return out


def _cql_questions(raw: str) -> list[dict[str, Any]]:
    value = decode_column(raw, _QUESTION_LIST)
    _check_questions(value)
    return [_stored_question(q) for q in value or []]


_QUESTION_LIST = parse_type("list<frozen<question>>", _UDTS)
_check_questions = _checker(_QUESTION_LIST)


def _plain_text(raw: str) -> str | None:
    return _text(raw) if raw != "" else None


def _ms(raw: str) -> int | None:
    """Epoch ms or a timestamp text (docs/batch.md#assessment-archival accepts both), ``yyyy-MM-dd
    HH:mm:ss:SSSZ`` too."""
    text = raw.strip()
    if text == "":
        return None
    if not text.isascii():  # int() and the date patterns would read other scripts' digits
        raise ValueError(f"not a timestamp: {bounds.short_text(text)!r} (digits must be ASCII)")
    if (text[1:] if text[0] == "-" else text).isdigit():
        if len(text) > _MAX_DIGITS:
            raise _refuse(text, bounds.TIMESTAMP_RULE)
        return _timestamp(int(text), text)
    try:
        ms = parse_timestamp(text)
    except ValueError:
        try:
            legacy = parse_api_ts(text)
        except OverflowError:  # 0001-01-01 00:00:00:000+0100 is before year 1 in UTC
            legacy = -1
        if legacy is None:
            raise
        ms = legacy
    return _timestamp(ms, text)


def _finite(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is not a number: {bounds.short_text(value)!r}")
    if not bounds.number_ok(value):
        raise ValueError(bounds.violation(what, bounds.NUMBER_RULE))
    return float(value)


def _double(raw: str) -> float | None:
    if raw.strip() == "":
        return None
    if not is_numeric_text(raw):  # float() would also take "١٢", "1_000", "nan" and "inf"
        raise ValueError(f"not a number: {bounds.short_text(raw)!r}")
    value = float(raw)
    if not bounds.number_ok(value):
        raise _refuse(raw.strip(), bounds.NUMBER_RULE)
    return value


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
        out["assess_ts"] = _timestamp(parse_timestamp(stamp), stamp)
    elif stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
        raise ValueError(f"{where}.assess_ts is not epoch ms or a timestamp")
    elif stamp is not None and not bounds.timestamp_ok(stamp):
        raise ValueError(bounds.violation(f"{where}.assess_ts", bounds.TIMESTAMP_RULE))
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
    rule = bounds.json_violation(value, numbers=True)  # nesting, NUL and number bounds, before any field is read
    if rule is not None:
        raise ValueError(bounds.violation("the value", rule))
    return [_json_question(i, q) for i, q in enumerate(value)]


def _legacy_day(text: str, zone: str) -> int:
    day = parse_date(text) if text.isascii() else None
    if day is None:
        raise ValueError(f"not a yyyy-MM-dd date: {bounds.short_text(text)!r}")
    try:
        ms = start_of_day_ms(day, zone)  # as `learnagg load batches` stores batch dates
    except (OverflowError, ValueError):  # 0001-01-01 in a zone east of UTC: before year 1 in UTC
        ms = -1
    return _timestamp(ms, text)


def _legacy_ts(text: str, _zone: str) -> int:
    try:
        ms = parse_api_ts(text) if text.isascii() else None
    except OverflowError:  # 0001-01-01 00:00:00:000+0100 is before year 1 in UTC
        ms = -1
    if ms is None:
        raise ValueError(f"not a yyyy-MM-dd HH:mm:ss:SSSZ date: {bounds.short_text(text)!r}")
    return _timestamp(ms, text)


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
        # docs/batch.md#assessment-archival: the archive layout (D5 CSV, docs/batch.md#exhaust-reports), in its column
        # order.
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
