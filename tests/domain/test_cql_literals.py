"""cqlsh literal formats: maps, lists, sets, UDTs, quoting and escapes, numbers, timestamps, errors with offsets."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnagg.domain.cql_lexer import parse_timestamp, unescape_text
from learnagg.domain.cql_literals import decode_column, parse_literal
from learnagg.domain.cql_types import CqlMap, CqlSet, CqlSyntaxError, CqlType, CqlUdt, Instant, parse_type, user_type

QUESTION = user_type(
    "question",
    [
        ("id", "text"),
        ("assess_ts", "timestamp"),
        ("max_score", "double"),
        ("score", "double"),
        ("type", "text"),
        ("title", "text"),
        ("resvalues", "list<frozen<map<text, text>>>"),
        ("params", "list<frozen<map<text, text>>>"),
        ("description", "text"),
        ("duration", "double"),
    ],
)
TS = 1637748930123  # 2021-11-24 10:15:30.123 UTC


def t(text: str) -> CqlType:
    return parse_type(text, {"question": QUESTION})


# --- a renderer that writes values the way cqlsh COPY TO formats them (formatting.py), for round trips ------------


def render_text(value: str, quote: bool = True) -> str:
    """cqlsh's format_value_text: backslash doubled, quote doubled (quoted only), control characters escaped."""
    out = value.replace("\\", "\\\\")
    if quote:
        out = out.replace("'", "''")
    out = "".join(repr(c)[1:-1] if unicodedata.category(c) == "Cc" else c for c in out)
    return f"'{out}'" if quote else out


def render_ts(ms: int, quote: bool = True) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f%z")
    return f"'{text}'" if quote else text


def render(value: Any, cql_type: CqlType, top: bool = False) -> str:
    """A typed Python value in cqlsh's literal format; ``top`` renders a CSV column (text unquoted, null empty)."""
    if value is None:
        return "" if top else "null"
    name = cql_type.name
    if name == "text":
        return render_text(value, quote=not top)
    if name == "timestamp":
        return render_ts(value, quote=not top)
    if name == "boolean":
        return "True" if value else "False"
    if name == "double":
        return repr(float(value))  # exact; cqlsh's default %g precision would round
    if name == "int":
        return str(value)
    if name == "list":
        return "[" + ", ".join(render(v, cql_type.params[0]) for v in value) + "]"
    if name == "set":
        return "{" + ", ".join(render(v, cql_type.params[0]) for v in value) + "}"
    if name == "map":
        key_type, value_type = cql_type.params
        return "{" + ", ".join(f"{render(k, key_type)}: {render(v, value_type)}" for k, v in value.items()) + "}"
    if name == "udt":
        return "{" + ", ".join(f"{f}: {render(value.get(f), ft)}" for f, ft in cql_type.fields) + "}"
    raise AssertionError(name)


# --- maps, lists, sets, tuples -------------------------------------------------------------------------------------


def test_map_of_ints_and_doubles():
    assert parse_literal("{'k': 1, 'b': 2.5}") == CqlMap((("k", 1), ("b", 2.5)))
    assert parse_literal("{'k': 1, 'b': 2.5}", t("map<text, double>")) == {"k": 1.0, "b": 2.5}
    assert parse_literal("{'completedCount': 3}", t("map<text, int>")) == {"completedCount": 3}


def test_a_whole_double_prints_without_fraction_and_reads_as_a_double():
    [value] = parse_literal("{'score:do_1': 2}", t("map<text, double>")).values()
    assert value == 2.0 and isinstance(value, float)


def test_lists_sets_and_tuples():
    assert parse_literal("['a', 'b']") == ["a", "b"]
    assert parse_literal("['a', 'b']", t("list<text>")) == ["a", "b"]
    assert parse_literal("{'a', 'b'}") == CqlSet(("a", "b"))
    assert parse_literal("{'a', 'b'}", t("set<text>")) == ["a", "b"]
    assert parse_literal("(1, 'x')") == (1, "x")


def test_empty_collections():
    assert parse_literal("{}") == CqlMap()
    assert parse_literal("[]", t("list<text>")) == []
    assert parse_literal("{}", t("map<text, int>")) == {}
    assert parse_literal("{}", t("set<text>")) == []


def test_nested_map_of_maps_as_in_cert_templates():
    text = "{'tmpl_1': {'identifier': 'tmpl_1', 'criteria': '{\"enrollment\":{\"status\":2}}'}}"
    assert parse_literal(text, t("map<text, frozen<map<text, text>>>")) == {
        "tmpl_1": {"identifier": "tmpl_1", "criteria": '{"enrollment":{"status":2}}'}
    }


def test_list_of_maps():
    assert parse_literal("[{'1': 'x'}, {'2': 'y'}]", t("list<frozen<map<text, text>>>")) == [{"1": "x"}, {"2": "y"}]


# --- UDTs ------------------------------------------------------------------------------------------------------------


def test_udt_with_unquoted_field_names_untyped():
    value = parse_literal("{id: 'q1', max_score: 1.0, params: [{'1': 'x'}]}")
    assert value == CqlUdt((("id", "q1"), ("max_score", 1.0), ("params", [CqlMap((("1", "x"),))])))


def test_question_udt_typed_every_field_in_declaration_order():
    text = (
        "[{id: 'q1', assess_ts: '2021-11-24 10:15:30.123000+0000', max_score: 1, score: 0.5, type: 'mcq', "
        "title: 'Who?', resvalues: [{'1': '{\"text\":\"A\"}'}], params: [{'1': '{\"text\":\"A\"}'}, {'answer': "
        '\'{"correct":["1"]}\'}], description: null, duration: 3}]'
    )
    [question] = parse_literal(text, t("list<frozen<question>>"))
    assert list(question) == [name for name, _ in QUESTION.fields]
    assert question == {
        "id": "q1",
        "assess_ts": TS,
        "max_score": 1.0,
        "score": 0.5,
        "type": "mcq",
        "title": "Who?",
        "resvalues": [{"1": '{"text":"A"}'}],
        "params": [{"1": '{"text":"A"}'}, {"answer": '{"correct":["1"]}'}],
        "description": None,
        "duration": 3.0,
    }


def test_udt_fields_in_any_order_and_missing_fields_are_null():
    value = parse_literal("{score: 1.0, id: 'q2'}", QUESTION)
    assert value["id"] == "q2" and value["score"] == 1.0 and value["assess_ts"] is None


def test_udt_field_name_may_be_double_quoted():
    assert parse_literal("{\"id\": 'q1'}", QUESTION)["id"] == "q1"


# --- strings and escapes ---------------------------------------------------------------------------------------------


def test_doubled_quote_is_one_quote():
    assert parse_literal("['it''s', '''']", t("list<text>")) == ["it's", "'"]


def test_backslash_and_control_character_escapes():
    assert parse_literal(r"['a\\b', 'line\nnext', 'tab\t', 'unit\x1f']", t("list<text>")) == [
        "a\\b",
        "line\nnext",
        "tab\t",
        "unit\x1f",
    ]


def test_a_lone_backslash_is_kept():
    # csv writers of older cqlsh versions do not double backslashes, so `\q` can reach us: keep it as written.
    assert unescape_text(r"C:\q") == "C:\\q"
    assert unescape_text(r"bad \x4") == "bad \\x4"


def test_top_level_text_is_unquoted_but_unescaped():
    assert decode_column(r'{"a":"x\\"}', t("text")) == '{"a":"x\\"}'
    assert decode_column("it's", t("text")) == "it's"


# --- scalars ---------------------------------------------------------------------------------------------------------


def test_numbers_and_booleans():
    assert parse_literal("[1, -2, 2.5, -1e-05, 3E2]") == [1, -2, 2.5, -1e-05, 300.0]
    assert decode_column("True", t("boolean")) is True
    assert decode_column("false", t("boolean")) is False
    assert decode_column("42", t("int")) == 42
    assert decode_column("1.33", t("double")) == 1.33


def test_null_and_empty():
    assert decode_column("", t("map<text, int>")) is None
    assert decode_column("", t("text")) is None
    assert parse_literal("null") is None
    assert parse_literal("[NaN, Infinity]")[1] == math.inf


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2021-11-24 10:15:30.123000+0000", TS),
        ("2021-11-24 10:15:30+0000", TS - 123),
        ("2021-11-24 10:15:30.123+0000", TS),
        ("2021-11-24T10:15:30.123Z", TS),
        ("2021-11-24 15:45:30.123000+0530", TS),
        ("2021-11-24 15:45:30.123+05:30", TS),
        ("2021-11-24 10:15:30.123", TS),  # no zone: UTC (SPEC C1)
        ("2021-11-24", TS - (10 * 3600 + 15 * 60 + 30) * 1000 - 123),
        ("1969-12-31 23:59:59.999000+0000", -1),
    ],
)
def test_timestamp_texts(text, ms):
    assert parse_timestamp(text) == ms


def test_timestamps_top_level_quoted_bare_and_epoch_ms():
    assert decode_column("2021-11-24 10:15:30.123000+0000", t("timestamp")) == TS
    assert decode_column(str(TS), t("timestamp")) == TS
    assert parse_literal("{'a': '2021-11-24 10:15:30.123000+0000'}", t("map<text, timestamp>")) == {"a": TS}
    assert parse_literal("{'a': 2021-11-24 10:15:30.123000+0000}", t("map<text, timestamp>")) == {"a": TS}
    assert parse_literal("[2021-11-24 10:15:30.123000+0000]") == [Instant(TS)]


# --- errors carry a position -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cql_type", "message", "position"),
    [
        ("{'a': 1", None, "expected ','", 7),
        ("['a',]", None, "expected a value, found ']'", 5),
        ("[1 2]", None, "expected ','", 3),
        ("'abc", None, "unterminated quoted string", 0),
        ("['a'] x", None, "expected the end of the value, found 'x'", 6),
        ("[#]", None, "unexpected character '#'", 1),
        ("{'a': 1, 'a': 2}", "map<text, int>", "duplicate map key 'a'", 9),
        ("{'a': 1.5}", "map<text, int>", "expected an integer", 6),
        ("{'a': NaN}", "map<text, double>", "not a finite double", 6),
        ("['x', 3]", "list<text>", "expected a quoted string, found the number 3", 6),
        ("{id: 'q', colour: 'red'}", "question", "unknown field 'colour'", 10),
        ("{'a': '2021-13-01 00:00:00+0000'}", "map<text, timestamp>", "invalid timestamp", 6),
        ("True", "int", "expected an integer, found 'True'", 0),
    ],
)
def test_errors_name_their_offset(text, cql_type, message, position):
    with pytest.raises(CqlSyntaxError) as caught:
        parse_literal(text, t(cql_type) if cql_type else None)
    assert message in caught.value.message
    assert caught.value.position == position
    assert str(caught.value).endswith(f"at offset {position}")


def test_type_errors():
    assert str(parse_type("map<text, frozen<list<frozen<map<text, text>>>>>")) == "map<text, list<map<text, text>>>"
    with pytest.raises(CqlSyntaxError, match="unknown type 'blobby'"):
        parse_type("list<blobby>")
    with pytest.raises(CqlSyntaxError, match="map takes 2"):
        parse_type("map<text>")
    with pytest.raises(CqlSyntaxError, match="list takes 1"):
        parse_type("list")
    with pytest.raises(CqlSyntaxError, match="unexpected text after the type"):
        parse_type("list<text> x")


# --- round trips through the renderer --------------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
doubles = st.floats(allow_nan=False, allow_infinity=False)
stamps = st.integers(min_value=-30_610_224_000_000, max_value=253_402_300_799_999)  # years 1000 to 9999
maps_of_text = st.dictionaries(texts, texts, max_size=3)
questions = st.fixed_dictionaries(
    {
        "id": st.none() | texts,
        "assess_ts": st.none() | stamps,
        "max_score": st.none() | doubles,
        "score": st.none() | doubles,
        "type": st.none() | texts,
        "title": st.none() | texts,
        "resvalues": st.none() | st.lists(maps_of_text, max_size=2),
        "params": st.none() | st.lists(maps_of_text, max_size=2),
        "description": st.none() | texts,
        "duration": st.none() | doubles,
    }
)
CASES = [
    ("list<text>", st.lists(texts, max_size=4)),
    ("map<text, int>", st.dictionaries(texts, st.integers(-(2**31), 2**31 - 1), max_size=4)),
    ("map<text, double>", st.dictionaries(texts, doubles, max_size=4)),
    ("map<text, timestamp>", st.dictionaries(texts, stamps, max_size=4)),
    ("map<text, frozen<map<text, text>>>", st.dictionaries(texts, maps_of_text, max_size=3)),
    ("list<frozen<question>>", st.lists(questions, max_size=3)),
    ("text", texts),
    ("timestamp", stamps),
    ("double", doubles),
    ("boolean", st.booleans()),
]


@pytest.mark.parametrize(("type_text", "strategy"), CASES, ids=[c[0] for c in CASES])
def test_rendered_values_parse_back(type_text, strategy):
    cql_type = t(type_text)

    @given(strategy)
    def check(value):
        assert decode_column(render(value, cql_type, top=True), cql_type) == (value if value != "" else None)

    check()
