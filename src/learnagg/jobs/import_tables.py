"""The importable file kinds of `learnagg import`: the reference tables' column layouts and field decoders."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table

from learnagg.adapters.store import tables
from learnagg.domain.cql_lexer import parse_timestamp
from learnagg.domain.cql_literals import decode_column
from learnagg.domain.cql_types import CqlType, parse_type, user_type
from learnagg.domain.dates import parse_api_ts, parse_date, start_of_day_ms


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
