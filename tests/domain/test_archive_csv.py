"""SPEC §6.2 and D5: partition periods, request ids, file names, the 12-column CSV, its checksum and read-back."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnagg.domain import archive_csv as ac
from learnagg.domain import archive_read as ar


def ms(*parts: int) -> int:
    return ac.to_epoch_ms(datetime(*parts, tzinfo=UTC))


QUESTION = {  # the stored key order (SPEC §2.2)
    "id": "q1",
    "assess_ts": 1568891735461,
    "max_score": 1.0,
    "score": 1.0,
    "type": "mcq",
    "title": 'What is, "WHO"?\n',
    "description": None,
    "duration": 14.0,
    "resvalues": [{"1": '{"text":"World Health Organizaton\\n"}'}],
    "params": [{"1": '{"text":"World"}'}, {"answer": '{"correct":["1"]}'}],
}


def row(user: str = "u1", content: str = "c1", attempt: str = "a1", **over: object) -> list[object]:
    values: dict[str, object] = {
        "course_id": "do_course",
        "batch_id": "batch-1",
        "user_id": user,
        "content_id": content,
        "attempt_id": attempt,
        "created_on": 1568891729576,
        "grand_total": "1.33/2.0",
        "last_attempted_on": 1568891729576,
        "total_max_score": 2.0,
        "total_score": 1.33,
        "updated_on": 1568891740000,
        "question": [QUESTION],
    }
    values.update(over)
    return [values[c] for c in ac.COLUMNS]


def archive(*rows: list[object]) -> tuple[bytes, ac.ArchiveDigest]:
    out = io.BytesIO()
    writer = ac.ArchiveWriter(out)
    for r in rows:
        writer.write(r)
    digest = writer.close()
    return out.getvalue(), digest


# -- partitions and names --------------------------------------------------------------------------------------


def test_request_id_is_md5u_of_the_spec_example():
    assert ac.request_id("do_1130928636168192001667", "batch-011", 2021, 48) == "AC0F439E287263DB49D54004DAA4644B"


def test_year_is_the_calendar_year_and_week_the_iso_week():
    assert ac.year_week(ms(2021, 1, 1)) == (2021, 53)
    assert ac.year_week(ms(2020, 12, 31, 23, 59)) == (2020, 53)
    assert ac.year_week(ms(2024, 12, 30)) == (2024, 1)
    assert ac.year_week(ms(2021, 11, 29)) == (2021, 48)


def test_a_week_holding_new_year_is_two_partitions():
    periods = ac.bucket_periods(ac.week_bucket(ms(2021, 1, 1, 12)))
    assert [(p.year, p.week) for p in periods] == [(2020, 53), (2021, 53)]
    assert [(p.start, p.end) for p in periods] == [
        (ms(2020, 12, 28), ms(2021, 1, 1)),
        (ms(2021, 1, 1), ms(2021, 1, 4)),
    ]
    [plain] = ac.bucket_periods(ac.week_bucket(ms(2021, 11, 30)))
    assert (plain.year, plain.week, plain.start, plain.end) == (2021, 48, ms(2021, 11, 29), ms(2021, 12, 6))


def test_week_buckets_run_monday_to_monday_in_utc():
    assert ac.week_bucket(ms(2021, 11, 29)) == ac.week_bucket(ms(2021, 12, 5, 23, 59, 59)) + 0
    assert ac.week_bucket(ms(2021, 12, 6)) == ac.week_bucket(ms(2021, 11, 29)) + 1
    assert ac.week_bucket(0) == 0 and ac.week_bucket(-ac.WEEK_SHIFT_MS) == 0


def test_before_cuts_at_the_last_partition_boundary():
    assert ac.period_cutoff(ms(2024, 5, 15, 12)) == ms(2024, 5, 13)
    assert ac.period_cutoff(ms(2024, 5, 13)) == ms(2024, 5, 13)
    assert ac.period_cutoff(ms(2021, 1, 2)) == ms(2021, 1, 1)  # 1 January is a boundary too


def test_file_key_has_no_zero_padded_week():
    key = ac.archive_key("archived-data/", "batch-011", "do_1", 2021, 5, 1700000000000)
    assert key == "archived-data/batch-011_do_1/2021-5-1700000000000.csv.gz"


def test_request_data_names_the_archived_table():
    assert ac.request_data("c", "b", 2021, 48) == {
        "archivalTable": "assessment_aggregator",
        "batchId": "b",
        "collectionId": "c",
        "year": 2021,
        "week": 48,
    }


# -- rendering ---------------------------------------------------------------------------------------------------


def test_created_on_is_text_with_milliseconds_in_utc():
    assert ac.format_created_on(1568891729576) == "2019-09-19 11:15:29.576"
    assert ac.format_created_on(ms(2021, 1, 1)) == "2021-01-01 00:00:00.000"
    assert ac.format_created_on(None) is None


def test_question_json_uses_the_archive_key_order_compactly():
    text = ac.question_json([QUESTION])
    assert list(json.loads(text)[0]) == list(ac.QUESTION_KEYS)
    assert text.startswith('[{"id":"q1","assess_ts":1568891735461,"max_score":1.0,"score":1.0,"type":"mcq"')
    assert text.endswith('"description":null,"duration":14.0}]')
    assert ac.question_json(json.dumps([QUESTION])) == text  # stored JSON text gives the same column
    assert ac.question_json(json.dumps([{"id": "q", "score": 1.0}])) == (
        '[{"id":"q","assess_ts":null,"max_score":null,"score":1.0,"type":null,"title":null,'
        '"resvalues":null,"params":null,"description":null,"duration":null}]'
    )


def test_d5_quotes_only_fields_holding_comma_quote_cr_or_lf():
    assert ac.render_line(["a", "b,c", 'd"e', "f\rg", "h\ni", None, 2.0, 7, " j "]) == (
        'a,"b,c","d""e","f\rg","h\ni",,2.0,7, j \n'
    )


@given(
    st.lists(
        st.one_of(st.none(), st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=2,  # a one-field line of an empty field is a blank line to the csv module
        max_size=6,
    )
)
def test_rendered_lines_parse_back_with_the_csv_module(fields):
    line = ac.render_line(fields)
    [parsed] = list(csv.reader(io.StringIO(line, newline="")))
    assert parsed == ["" if f is None else repr(f) if isinstance(f, float) else str(f) for f in fields]


@given(
    user=st.text(min_size=1).filter(lambda s: s.strip() == s and "\x00" not in s),
    attempt=st.text(),
    grand=st.one_of(st.none(), st.text()),
    score=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_the_fast_line_equals_the_plain_rendering(user, attempt, grand, score):
    values = row(user=user, attempt=attempt, grand_total=grand, total_score=score)
    assert ac.archive_line(values) == ac.render_line(ac.archive_fields(values))


def test_archive_has_the_12_columns_in_order_and_spec_formats():
    data, digest = archive(row(), row(content="c2", created_on=None, total_score=None, question=None))
    text = gzip.decompress(data).decode()
    lines = text.split("\n")
    assert lines[0] == ",".join(ac.COLUMNS)
    assert lines[1].startswith(
        "do_course,batch-1,u1,c1,a1,2019-09-19 11:15:29.576,1.33/2.0,1568891729576,2.0,1.33,1568891740000,"
        '"[{""id"":""q1"",""assess_ts"":1568891735461,'
    )
    assert lines[2] == "do_course,batch-1,u1,c2,a1,,1.33/2.0,1568891729576,2.0,,1568891740000,"
    assert text.endswith("\n") and "\r" not in text
    assert digest == ac.ArchiveDigest(2, hashlib.sha256(text.encode()).hexdigest())


def test_same_rows_give_the_same_bytes():
    assert archive(row(), row(user="u2"))[0] == archive(row(), row(user="u2"))[0]


# -- reading back -------------------------------------------------------------------------------------------------


def test_rows_read_back_with_their_digest():
    rows = [row(), row(user='ü,"x"\r\n', attempt=""), row(content="c3", question=None, total_max_score=None)]
    data, digest = archive(*rows)
    reader = ar.ArchiveReader(io.BytesIO(data))
    back = list(reader)
    assert reader.digest == digest
    assert [(r.user_id, r.content_id, r.attempt_id) for r in back] == [
        ("u1", "c1", "a1"),
        ('ü,"x"\r\n', "c1", ""),
        ("u1", "c3", "a1"),
    ]
    first = back[0]
    assert (first.created_on, first.last_attempted_on, first.updated_on) == (
        1568891729576,
        1568891729576,
        1568891740000,
    )
    assert (first.total_score, first.total_max_score, first.grand_total) == (1.33, 2.0, "1.33/2.0")
    assert ar.parse_question(first.question) == [{k: QUESTION[k] for k in ac.QUESTION_KEYS}]
    assert back[2].question is None and back[2].total_max_score is None
    assert [r.question for r in ar.ArchiveReader(io.BytesIO(data), questions=False)] == [None, None, None]
    assert ar.read_digest(io.BytesIO(data)) == digest
    assert ar.read_checksum(io.BytesIO(data)) == digest.checksum


def test_timestamps_are_read_as_epoch_ms_or_text():
    assert ar.parse_timestamp("1568891729576") == 1568891729576
    assert ar.parse_timestamp("2019-09-19 11:15:29.576") == 1568891729576
    assert ar.parse_timestamp("2019-09-19T11:15:29.576Z") == 1568891729576
    assert ar.parse_timestamp("2019-09-19 16:45:29.576+05:30") == 1568891729576
    assert ar.parse_timestamp("2019-09-19 11:15:29:576+0000") == 1568891729576
    assert ar.parse_timestamp("2019-09-19") == ms(2019, 9, 19)
    assert ar.parse_timestamp("") is None
    with pytest.raises(ValueError, match="not a timestamp"):
        ar.parse_timestamp("yesterday")


def test_a_reference_file_with_text_timestamps_and_another_column_order_is_read():
    header = list(reversed(ac.COLUMNS))
    values = dict(zip(ac.COLUMNS, row(), strict=True))
    values.update(updated_on="2019-09-19 11:15:40.000", last_attempted_on="2019-09-19 11:15:29.576")
    values["question"] = ac.question_json(values["question"])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, [values[c] for c in header]])
    [back] = list(ar.ArchiveReader(io.BytesIO(gzip.compress(buf.getvalue().encode()))))
    assert (back.updated_on, back.last_attempted_on, back.user_id) == (1568891740000, 1568891729576, "u1")
    assert ar.parse_question(back.question)[0]["id"] == "q1"


def read_all(data: bytes) -> list[ar.ArchivedRow]:
    return list(ar.ArchiveReader(io.BytesIO(data)))


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)  # the same bytes, so the same test ids, in every test process


HEADER = ",".join(ac.COLUMNS) + "\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip at all", "corrupt archive"),
        (gz(""), "line 1: empty archive"),
        (gz("course_id,batch_id\n"), "line 1: header lacks user_id"),
        (gz(HEADER + "c,b,u,x,a,,,,,,,\nc,b,u\n"), "line 3: 3 fields, expected 12"),
        (gz(HEADER + "c,b,u,x,a,,,,,,when,\n"), "line 2: not a timestamp: 'when'"),
        (gz(HEADER + "c,b,u,x,a,,,,lots,,,\n"), "line 2: not a number: 'lots'"),
        (gz(HEADER + "c,b,,x,a,,,,,,,\n"), "line 2: empty user_id"),
        (gz(HEADER + 'c,b,u,x,a,,,,,,,"[\n'), "line 2: a quoted field is not closed"),
    ],
)
def test_a_bad_archive_is_refused_with_its_line_number(data, message):
    with pytest.raises(ar.ArchiveFormatError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_all(data)


def test_a_truncated_archive_is_refused():
    data, _ = archive(*(row(user=f"u{i}") for i in range(2000)))
    with pytest.raises(ar.ArchiveFormatError, match="corrupt archive"):
        read_all(data[: len(data) // 2])
    with pytest.raises(ar.ArchiveFormatError, match="corrupt archive"):
        ar.read_checksum(io.BytesIO(data[: len(data) // 2]))


def test_a_changed_byte_changes_the_checksum():
    data, digest = archive(row(), row(user="u2"))
    text = gzip.decompress(data).replace(b"u2", b"u3")
    assert ar.read_checksum(io.BytesIO(gzip.compress(text))) != digest.checksum
