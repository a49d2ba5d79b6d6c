"""The chunk renderer and the gzip member give the very bytes of the row-at-a-time writer
(docs/batch.md#assessment-archival)."""

from __future__ import annotations

import gzip
import io
import json
import random
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnagg.domain import archive_chunks as ch
from learnagg.domain import archive_csv as ac
from learnagg.domain.gzip_member import GzipMember


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def question(n: int, order: tuple[str, ...]) -> dict[str, Any]:
    values = {
        "id": f"q{n}",
        "assess_ts": 1_700_000_000_000 + n,
        "max_score": 1.0,
        "score": n / 3,
        "type": "mcq",
        "title": f'Title, "{n}"\n',
        "description": None,
        "duration": 1e-7 * n,
        "resvalues": [{"1": '{"text":"A"}'}],
        "params": [],
    }
    return {k: values[k] for k in order}


ORDERS = [ac.QUESTION_KEYS, ac._STORED_KEYS, ch.JSONB_KEYS]
TEXT = st.text(st.sampled_from('ab,"\r\n é😀\x00\\'), max_size=6)
QUESTIONS = st.one_of(
    st.none(),
    st.lists(st.integers(0, 2).map(lambda i: question(i, ORDERS[i])), max_size=3).map(dumps),
    st.sampled_from(["[]", "[1,2]", '["x"]', "null", '{"id":"q"}', '[{"id":"q"}]', '[ {"id": "s"} ]', '"t"']),
)
ROW = st.tuples(
    TEXT.filter(bool),
    TEXT.filter(bool),
    TEXT.filter(bool),
    TEXT.filter(bool),
    TEXT,
    st.one_of(st.none(), st.integers(-(10**12), 253_402_300_799_999)),
    st.one_of(st.none(), TEXT),
    st.one_of(st.none(), st.integers(0, 10**13)),
    st.one_of(st.none(), st.floats(-1e15, 1e15), st.integers(0, 9)),
    st.one_of(st.none(), st.floats(-1e15, 1e15)),
    st.one_of(st.none(), st.integers(0, 10**13)),
    QUESTIONS,
)


def one_by_one(rows: list[tuple[Any, ...]]) -> str:
    return "".join(ac.archive_line(r, dumps, orjson.loads) for r in rows)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, max_size=6))
def test_archive_lines_is_archive_line_of_every_row(rows):
    expected = error = None
    try:
        expected = one_by_one(rows)
    except (TypeError, ValueError) as exc:
        error = type(exc)
    if error is None:
        assert ch.archive_lines(rows, dumps, orjson.loads) == expected
    else:
        with pytest.raises(error):
            ch.archive_lines(rows, dumps, orjson.loads)


def test_the_common_rows_take_the_fast_path_in_every_stored_key_order():
    rows = [
        ("do_c", "b-1", f"u{i}", "c", str(i), 1_700_000_000_123 + i, "1.0/2.0", 5, 2.0, 1.0, 7, dumps([question(i, o)]))
        for i, o in enumerate(ORDERS * 3)
    ]
    text = ch.archive_lines(rows, dumps, orjson.loads)
    assert text == one_by_one(rows)
    assert len({line.split(",", 11)[11] for line in text.splitlines()}) == len(rows)  # every question rendered
    assert ch.archive_question(rows[1][11], dumps, orjson.loads) == ac.question_json(rows[1][11], dumps, orjson.loads)
    jsonb_text = json.dumps([question(1, ch.JSONB_KEYS)])  # with spaces, as PostgreSQL gives it
    assert ch.archive_question(jsonb_text, dumps, orjson.loads) == dumps([question(1, ac.QUESTION_KEYS)])


def test_the_gzip_member_is_gzipfile_byte_for_byte_whatever_the_parts():
    rng = random.Random(5)
    data = "".join(f"{rng.random()},{rng.choice(['x', 'é', 'long text ' * 20])}\n" for _ in range(20_000)).encode()
    for level in (1, 6, 9):
        expected = io.BytesIO()
        with gzip.GzipFile(filename="", fileobj=expected, mode="wb", compresslevel=level, mtime=0) as gz:
            gz.write(data)
        member = GzipMember(level)
        out = io.BytesIO()
        cut = 0
        while cut < len(data):
            step = rng.choice([1, 100, 4096, 1 << 20])
            out.write(member.compress(data[cut : cut + step]))
            cut += step
        out.write(member.finish())
        assert out.getvalue() == expected.getvalue()
        assert gzip.decompress(out.getvalue()) == data
    empty = GzipMember(1)
    assert gzip.decompress(empty.finish()) == b""
    assert zlib.decompress(GzipMember(1).finish(), 31) == b""
