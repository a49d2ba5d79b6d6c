"""Hostile files and options on the CLI batch paths: one-line errors naming FILE:LINE, nothing written, no traceback.

Imports keep the project's input bounds (docs/threat-model.md): numbers finite within 1e15, CQL ints within 32 bits,
epoch-ms timestamps in [0, 253402300799999], ASCII digits only, no NUL. Loads refuse bytes that are not UTF-8.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import assessment_aggregator, course_batch, user_enrolments, users
from learnagg.domain.cql_literals import parse_literal
from learnagg.domain.cql_types import CqlSyntaxError, parse_type
from learnagg.entrypoints.cli import main

MAX_TS = 253_402_300_799_999
ARCHIVE_HEADER = (
    "course_id,batch_id,user_id,content_id,attempt_id,created_on,grand_total,last_attempted_on,"
    "total_max_score,total_score,updated_on,question"
)
GOOD_ARCHIVED = "c1,b1,u1,do_1,a1,1700000000000,1/2,1700000000000,2.0,1.0,1700000000000,[]"
CQLSH_HEADER = "user_id,course_id,batch_id,content_id,attempt_id,created_on,total_score,question"
GOOD_CQLSH = "u1,c1,b1,do_1,a1,2023-11-14 22:13:20.000000+0000,1,[]"


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test database, through `LEARNAGG_DATABASE_URL`."""
    monkeypatch.setenv("LEARNAGG_DATABASE_URL", database_url)
    assert main(["init"]) == 0
    yield database_url


def count(url: str, table: Table) -> int:
    store = Store(url)
    try:
        with store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        store.dispose()


def refused(capsys: pytest.CaptureFixture[str], args: list[str], code: int = 1) -> str:
    """Run the command, expect ``code`` and exactly one line on stderr; return that line."""
    assert main(args) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in err and "database error" not in err and "Traceback" not in err
    return lines[0]


# --- learnagg import --------------------------------------------------------------------------------------------------

_TIMESTAMP_RULE = "must be an epoch-ms timestamp between 0 and 253402300799999"
_NUMBER_RULE = "must be a finite number with absolute value at most 1e15"

ARCHIVED_BAD = {
    "20-digit epoch ms": (
        "c1,b1,u1,do_1,a2,99999999999999999999,1/2,1,2,1,1,[]",
        f"column created_on: 99999999999999999999 {_TIMESTAMP_RULE}",
    ),
    "non-ASCII digits": ("c1,b1,u1,do_1,a2,١٢,1/2,1,2,1,1,[]", "column created_on: not a timestamp: '١٢'"),
    "before 1970": ("c1,b1,u1,do_1,a2,1,1/2,1,2,1,-5,[]", f"column updated_on: -5 {_TIMESTAMP_RULE}"),
    "before year 1 in UTC": (
        "c1,b1,u1,do_1,a2,0001-01-01 00:00:00+0100,1/2,1,2,1,1,[]",
        f"column created_on: 0001-01-01 00:00:00+0100 {_TIMESTAMP_RULE}",
    ),
    "legacy text before year 1": (
        "c1,b1,u1,do_1,a2,0001-01-01 00:00:00:000+0100,1/2,1,2,1,1,[]",
        f"column created_on: 0001-01-01 00:00:00:000+0100 {_TIMESTAMP_RULE}",
    ),
    "1e300": ("c1,b1,u1,do_1,a2,1,1/2,1,1e300,1,1,[]", f"column total_max_score: 1e300 {_NUMBER_RULE}"),
    "non-ASCII score": ("c1,b1,u1,do_1,a2,1,1/2,1,٢,1,1,[]", "column total_max_score: not a number: '٢'"),
    "question timestamp": (
        'c1,b1,u1,do_1,a2,1,1/2,1,2,1,1,"[{""id"": ""q1"", ""assess_ts"": 300000000000000}]"',
        f"column question: question[0].assess_ts {_TIMESTAMP_RULE}",
    ),
    "question score": (
        'c1,b1,u1,do_1,a2,1,1/2,1,2,1,1,"[{""id"": ""q1"", ""score"": 1e300}]"',
        "column question: the value must hold only finite numbers with absolute value at most 1e15",
    ),
    "NUL in question": (
        'c1,b1,u1,do_1,a2,1,1/2,1,2,1,1,"[{""id"": ""q\\u0000""}]"',
        "column question: the value must not contain a NUL character",
    ),
    "NUL in a key": ("c1,b1,u\x001,do_1,a2,1,1/2,1,2,1,1,[]", "column user_id: text must not contain a NUL character"),
}


@pytest.mark.parametrize("case", list(ARCHIVED_BAD))
def test_a_hostile_archived_value_refuses_the_whole_file(url, tmp_path: Path, capsys, case: str):
    record, reason = ARCHIVED_BAD[case]
    file = tmp_path / "archived.csv"
    file.write_text(f"{ARCHIVE_HEADER}\n{GOOD_ARCHIVED}\n{record}\n", encoding="utf-8")
    line = refused(capsys, ["import", "archived-assessments", str(file)])
    assert line.startswith(f"learnagg: error: {file}:3: {reason}"), line
    assert count(url, assessment_aggregator) == 0


def test_archived_values_at_the_bounds_are_imported(url, tmp_path: Path, capsys):
    file = tmp_path / "edge.csv"
    question = f'"[{{""id"": ""q1"", ""score"": 1e15, ""assess_ts"": {MAX_TS}}}]"'
    file.write_text(f"{ARCHIVE_HEADER}\nc1,b1,u1,do_1,a1,0,1/2,{MAX_TS},1e15,-1e15,{MAX_TS},{question}\n")
    assert main(["import", "archived-assessments", str(file)]) == 0
    assert count(url, assessment_aggregator) == 1


CQLSH_BAD = {
    "20-digit epoch ms": (
        "u1,c1,b1,do_1,a2,99999999999999999999,1,[]",
        f"column created_on: 99999999999999999999 {_TIMESTAMP_RULE}",
    ),
    "non-ASCII digits": ("u1,c1,b1,do_1,a2,١٢,1,[]", "column created_on: unexpected character '١'"),
    "non-ASCII quoted timestamp": (
        "u1,c1,b1,do_1,a2,,1,\"[{id: 'q1', assess_ts: '٢٠٢١-01-01 00:00:00+0000'}]\"",
        "column question: invalid timestamp '٢٠٢١-01-01 00:00:00+0000'",
    ),
    "before year 1 in UTC": (
        "u1,c1,b1,do_1,a2,0001-01-01 00:00:00+0100,1,[]",
        f"column created_on: -62135600400000 {_TIMESTAMP_RULE}",
    ),
    "1e300": ("u1,c1,b1,do_1,a2,,1e300,[]", f"column total_score: 1e+300 {_NUMBER_RULE}"),
    "question timestamp": (
        "u1,c1,b1,do_1,a2,,1,\"[{id: 'q1', assess_ts: 100000000000000000000}]\"",
        f"column question: 100000000000000000000 {_TIMESTAMP_RULE}",
    ),
    "NUL escape in a key": ("u\\\\x001,c1,b1,do_1,a2,,1,[]", "column user_id: text must not contain a NUL character"),
}


@pytest.mark.parametrize("case", list(CQLSH_BAD))
def test_a_hostile_cqlsh_value_refuses_the_whole_file(url, tmp_path: Path, capsys, case: str):
    record, reason = CQLSH_BAD[case]
    file = tmp_path / "aa.csv"
    file.write_text(f"{CQLSH_HEADER}\n{GOOD_CQLSH}\n{record}\n", encoding="utf-8")
    line = refused(capsys, ["import", "assessment_aggregator", str(file)])
    assert line.startswith(f"learnagg: error: {file}:3: {reason}"), line
    assert count(url, assessment_aggregator) == 0


def test_cql_ints_stay_within_32_bits_and_legacy_dates_within_range(url, tmp_path: Path, capsys):
    enrolments = tmp_path / "ue.csv"
    enrolments.write_text("userid,courseid,batchid,status\nu1,c1,b1,2\nu2,c1,b1,99999999999999999999\n")
    line = refused(capsys, ["import", "user_enrolments", str(enrolments)])
    assert line == (
        f"learnagg: error: {enrolments}:3: column status: 99999999999999999999 must be an integer between "
        "-2147483648 and 2147483647 (CQL int)"
    )
    assert count(url, user_enrolments) == 0
    batches = tmp_path / "cb.csv"
    batches.write_text("courseid,batchid,startdate,updateddate\nc1,b1,2024-01-01,\nc1,b2,0001-01-01,\n")
    line = refused(capsys, ["import", "course_batch", str(batches)])
    assert line == f"learnagg: error: {batches}:3: column startdate: 0001-01-01 {_TIMESTAMP_RULE}"
    batches.write_text("courseid,batchid,updateddate\nc1,b1,0001-01-01 00:00:00:000+0100\n")
    line = refused(capsys, ["import", "course_batch", str(batches)])
    assert line == f"learnagg: error: {batches}:2: column updateddate: 0001-01-01 00:00:00:000+0100 {_TIMESTAMP_RULE}"
    assert count(url, course_batch) == 0


def test_the_cqlsh_lexer_reads_ascii_digits_only():
    with pytest.raises(CqlSyntaxError, match="unexpected character"):
        parse_literal("١٢", parse_type("int"))
    with pytest.raises(CqlSyntaxError, match="invalid timestamp"):
        parse_literal("['٢٠٢١-01-01']", parse_type("list<timestamp>"))
    assert parse_literal("[12, 2021-01-01]", parse_type("list<timestamp>")) == [12, 1_609_459_200_000]


# --- learnagg load ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good"),
    [
        ("users", {"id": "u-1"}),
        ("courses", {"identifier": "do_c1", "mimeType": "application/vnd.ekstep.content-collection"}),
        ("groups", {"name": "g1"}),
        ("enrolments", {"userId": "u-1", "courseId": "do_c1", "batchId": "b1"}),
    ],
)
def test_load_of_a_file_that_is_not_utf8_names_the_line(url, tmp_path: Path, capsys, kind: str, good: dict):
    file = tmp_path / f"{kind}.jsonl"
    file.write_bytes(json.dumps(good).encode() + b"\n\n" + b'{"id": "caf\xe9"}\n')
    line = refused(capsys, ["load", kind, str(file)])
    assert line == f"learnagg: error: {file}:3: not UTF-8 text (byte 12 of the line)"


def test_load_reads_stdin_bytes_and_a_byte_order_mark(url, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"id": "u-1"}\n\xff\n'), encoding="utf-8"))
    assert refused(capsys, ["load", "users", "-"]) == "learnagg: error: -:2: not UTF-8 text (byte 1 of the line)"
    file = tmp_path / "bom.jsonl"
    file.write_bytes(b'\xef\xbb\xbf{"id": "u-1"}\r\n{"id": "u-2"}\r\n')
    assert main(["load", "users", str(file)]) == 0
    assert count(url, users) == 2


def test_load_refuses_nul_characters(url, tmp_path: Path, capsys):
    file = tmp_path / "users.jsonl"
    file.write_text('{"id": "u-1"}\n{"id": "u\\u0000-2"}\n')
    line = refused(capsys, ["load", "users", str(file)])
    assert line == f"learnagg: error: {file}:2: the line must not contain a NUL character"
    courses = tmp_path / "courses.jsonl"
    courses.write_text('{"identifier": "do\\u0000", "mimeType": "application/vnd.ekstep.content-collection"}\n')
    line = refused(capsys, ["load", "courses", str(courses)])
    assert line == f"learnagg: error: {courses}:1: the line must not contain a NUL character"
    assert count(url, users) == 0


# --- numeric options --------------------------------------------------------------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["migrate", "scores", "--chunk-rows", HUGE], "--chunk-rows"),
        (["migrate", "scores", "--chunk-learners", HUGE], "--chunk-learners"),
        (["migrate", "agg-to-aggregates", "--chunk-rows", "1000001"], "--chunk-rows"),
        (["inspect", "events", "--topic", "assess", "--limit", HUGE], "--limit"),
        (["import", "user_activity_agg", "x.csv", "--chunk-rows", HUGE], "--chunk-rows"),
        (["import", "user_activity_agg", "x.csv", "--chunk-rows", "0"], "--chunk-rows"),
    ],
)
def test_numeric_options_are_bounded(capsys, args: list[str], option: str):
    line = refused(capsys, args, code=2)
    assert line.startswith(f"learnagg: error: Invalid value for '{option}'"), line
