"""cqlsh literal formats (COPY TO output): a recursive-descent parser over the lexer's tokens, optionally typed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from learnagg.domain.cql_lexer import (
    END,
    INSTANT,
    NAME,
    NUMBER,
    PUNCT,
    STRING,
    WORD,
    ParseFailure,
    Token,
    number_value,
    offsets,
    string_value,
    timestamp_value,
    tokenize,
    unescape_text,
    unexpected,
)
from learnagg.domain.cql_types import CqlMap, CqlSet, CqlSyntaxError, CqlType, CqlUdt, Instant

# cqlsh renders a collection, tuple or UDT element with `format_value(..., quote=True)`: text becomes '…' with ''
# for a quote, a backslash doubled and control characters shown as Python escapes (\n, \t, \x1f…); timestamps use
# `%Y-%m-%d %H:%M:%S.%f%z` (older versions `%Y-%m-%d %H:%M:%S%z`), quoted inside collections; doubles use %g, so
# 2.0 prints as `2`; booleans print `True`/`False`; a UDT prints `{field: value, …}` with null fields as `null`.


# --- typed readers -------------------------------------------------------------------------------------------------

# A reader takes (tokens, index) and returns (value, next index). Readers are built once per type and cached, and
# loop inline: the import of a large export calls them for every field of every row.
Reader = Callable[[list[Token], int], tuple[Any, int]]
_SPECIAL_DOUBLES = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
_KEYWORDS = {"true": True, "false": False, "null": None}


def _read_text(tokens: list[Token], i: int) -> tuple[Any, int]:
    raw = tokens[i][STRING]
    if raw:
        return string_value(raw), i + 1
    raise unexpected("a quoted string", tokens, i)


def _read_int(tokens: list[Token], i: int) -> tuple[Any, int]:
    raw = tokens[i][NUMBER]
    if raw and type(value := number_value(raw)) is int:
        return value, i + 1
    raise unexpected("an integer", tokens, i)


def _read_double(tokens: list[Token], i: int) -> tuple[Any, int]:
    tok = tokens[i]
    if tok[NUMBER] and math.isfinite(value := float(tok[NUMBER])):
        return value, i + 1
    if tok[NUMBER] or tok[WORD].lower() in _SPECIAL_DOUBLES:
        raise ParseFailure(f"{tok[NUMBER] or tok[WORD]} is not a finite double", i)
    raise unexpected("a number", tokens, i)


def _read_boolean(tokens: list[Token], i: int) -> tuple[Any, int]:
    word = tokens[i][WORD].lower()
    if word in ("true", "false"):
        return word == "true", i + 1
    raise unexpected("True or False", tokens, i)


def _read_timestamp(tokens: list[Token], i: int) -> tuple[Any, int]:
    tok = tokens[i]
    if tok[STRING]:
        return timestamp_value(string_value(tok[STRING]), i), i + 1
    if tok[INSTANT]:
        return timestamp_value(tok[INSTANT], i), i + 1
    if tok[NUMBER] and type(value := number_value(tok[NUMBER])) is int:
        return value, i + 1  # cqlsh prints epoch ms for a date it cannot format
    raise unexpected("a timestamp", tokens, i)


_SCALAR_READERS: dict[str, Reader] = {
    "text": _read_text,
    "int": _read_int,
    "double": _read_double,
    "boolean": _read_boolean,
    "timestamp": _read_timestamp,
}


def _sequence_reader(read_item: Reader, opener: str, closer: str) -> Reader:
    def read(tokens: list[Token], i: int) -> tuple[Any, int]:
        if tokens[i][PUNCT] != opener:
            raise unexpected(repr(opener), tokens, i)
        i += 1
        out: list[Any] = []
        if tokens[i][PUNCT] == closer:
            return out, i + 1
        while True:
            value, i = read_item(tokens, i)
            out.append(value)
            punct = tokens[i][PUNCT]
            if punct == ",":
                i += 1
            elif punct == closer:
                return out, i + 1
            else:
                raise unexpected(f"',' or {closer!r}", tokens, i)

    return read


def _map_reader(read_key: Reader, read_value: Reader) -> Reader:
    def read(tokens: list[Token], i: int) -> tuple[Any, int]:
        if tokens[i][PUNCT] != "{":
            raise unexpected("'{'", tokens, i)
        i += 1
        out: dict[Any, Any] = {}
        if tokens[i][PUNCT] == "}":
            return out, i + 1
        while True:
            key, j = read_key(tokens, i)
            if key in out:
                raise ParseFailure(f"duplicate map key {key!r}", i)
            if tokens[j][PUNCT] != ":":
                raise unexpected("':'", tokens, j)
            out[key], i = read_value(tokens, j + 1)
            punct = tokens[i][PUNCT]
            if punct == ",":
                i += 1
            elif punct == "}":
                return out, i + 1
            else:
                raise unexpected("',' or '}'", tokens, i)

    return read


def _udt_reader(t: CqlType) -> Reader:
    readers = {name: reader_for(ft) for name, ft in t.fields}
    names = [name for name, _ in t.fields]

    def read(tokens: list[Token], i: int) -> tuple[Any, int]:
        if tokens[i][PUNCT] != "{":
            raise unexpected("'{'", tokens, i)
        i += 1
        seen: dict[str, Any] = {}
        if tokens[i][PUNCT] == "}":
            return dict.fromkeys(names), i + 1
        while True:
            tok = tokens[i]
            name = tok[WORD] or tok[NAME][1:-1].replace('""', '"')
            if not name:
                raise unexpected(f"a field name of {t}", tokens, i)
            read_field = readers.get(name)
            if read_field is None:
                raise ParseFailure(f"unknown field {name!r} of {t}", i)
            if name in seen:
                raise ParseFailure(f"duplicate field {name!r}", i)
            if tokens[i + 1][PUNCT] != ":":
                raise unexpected("':'", tokens, i + 1)
            word = tokens[i + 2][WORD]
            if word and word.lower() == "null":
                seen[name], i = None, i + 3
            else:
                seen[name], i = read_field(tokens, i + 2)
            punct = tokens[i][PUNCT]
            if punct == ",":
                i += 1
            elif punct == "}":
                # Every field, in declaration order; a field cqlsh did not print is null (any order: CASSANDRA-12959).
                return {name: seen.get(name) for name in names}, i + 1
            else:
                raise unexpected("',' or '}'", tokens, i)

    return read


_READERS: dict[CqlType, Reader] = {}


def reader_for(t: CqlType) -> Reader:
    """The (cached) reader of values of type t."""
    reader = _READERS.get(t)
    if reader is None:
        if t.name in _SCALAR_READERS:
            reader = _SCALAR_READERS[t.name]
        elif t.name == "list":
            reader = _sequence_reader(reader_for(t.params[0]), "[", "]")
        elif t.name == "set":
            reader = _sequence_reader(reader_for(t.params[0]), "{", "}")
        elif t.name == "map":
            reader = _map_reader(reader_for(t.params[0]), reader_for(t.params[1]))
        else:
            reader = _udt_reader(t)
        _READERS[t] = reader
    return reader


# --- untyped reader ------------------------------------------------------------------------------------------------


def _read_any(tokens: list[Token], i: int) -> tuple[Any, int]:
    tok = tokens[i]
    if tok[STRING]:
        return string_value(tok[STRING]), i + 1
    if tok[NUMBER]:
        return number_value(tok[NUMBER]), i + 1
    if tok[INSTANT]:
        return Instant(timestamp_value(tok[INSTANT], i)), i + 1
    word = tok[WORD].lower()
    if word in _KEYWORDS:
        return _KEYWORDS[word], i + 1
    if word in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[word], i + 1
    punct = tok[PUNCT]
    if punct in ("[", "("):
        items, i = _sequence_reader(_read_any, punct, "]" if punct == "[" else ")")(tokens, i)
        return (items if punct == "[" else tuple(items)), i
    if punct == "{":
        return _read_braces(tokens, i)
    raise unexpected("a value", tokens, i)


def _field_name(tok: Token) -> str:
    if tok[NAME]:
        return tok[NAME][1:-1].replace('""', '"')
    return tok[WORD] if tok[WORD].lower() not in _KEYWORDS and tok[WORD].lower() not in _SPECIAL_DOUBLES else ""


def _read_braces(tokens: list[Token], i: int) -> tuple[Any, int]:
    """After ``{``: ``}`` (an empty map), a UDT (a field name then ``:``), a map or a set."""
    if tokens[i + 1][PUNCT] == "}":
        return CqlMap(), i + 2
    if _field_name(tokens[i + 1]) and tokens[i + 2][PUNCT] == ":":

        def read_field(toks: list[Token], j: int) -> tuple[Any, int]:
            name = _field_name(toks[j])
            if not name:
                raise unexpected("a field name", toks, j)
            if toks[j + 1][PUNCT] != ":":
                raise unexpected("':'", toks, j + 1)
            value, j = _read_any(toks, j + 2)
            return (name, value), j

        fields, i = _sequence_reader(read_field, "{", "}")(tokens, i)
        return CqlUdt(tuple(fields)), i
    # The first item decides between a map and a set (END ends every token list, so the index is valid).
    if tokens[_read_any(tokens, i + 1)[1]][PUNCT] == ":":

        def read_pair(toks: list[Token], j: int) -> tuple[Any, int]:
            key, j = _read_any(toks, j)
            if toks[j][PUNCT] != ":":
                raise unexpected("':'", toks, j)
            value, j = _read_any(toks, j + 1)
            return (key, value), j

        pairs, i = _sequence_reader(read_pair, "{", "}")(tokens, i)
        return CqlMap(tuple(pairs)), i
    members, i = _sequence_reader(_read_any, "{", "}")(tokens, i)
    return CqlSet(tuple(members)), i


# --- entry points --------------------------------------------------------------------------------------------------


def parse_literal(text: str, cql_type: CqlType | None = None) -> Any:
    """Parse one cqlsh literal, e.g. ``{'k': 1}``, ``['a', 'b']`` or ``{id: 'q1', max_score: 1.0}``.

    Args:
        text: the literal; the whole text must be one value.
        cql_type: when given, the value must have this type and comes back as plain Python values: lists for
            lists, sets and tuples, dicts for maps and UDTs (every field, in declaration order), epoch ms for
            timestamps, floats for doubles. Without it, maps, sets and UDTs come back as CqlMap, CqlSet, CqlUdt
            and unquoted timestamps as Instant.

    Raises:
        CqlSyntaxError: the text is not such a value; ``position`` is the offset of the offending token.
    """
    tokens = tokenize(text)
    try:
        value, i = (_read_any if cql_type is None else reader_for(cql_type))(tokens, 0)
        if tokens[i] != END:
            raise unexpected("the end of the value", tokens, i)
    except ParseFailure as failure:
        raise CqlSyntaxError(failure.message, offsets(text)[failure.index]) from None
    return value


def decode_column(raw: str, cql_type: CqlType) -> Any:
    """The value of one top-level column of a cqlsh export: text is unquoted, everything else a literal.

    An empty field is None (cqlsh's default NULL option); callers decide what an empty key column means.

    Raises:
        CqlSyntaxError: the field is not a value of the column's type.
    """
    if raw == "":
        return None
    if cql_type.name == "text":
        return unescape_text(raw)
    return parse_literal(raw, cql_type)
