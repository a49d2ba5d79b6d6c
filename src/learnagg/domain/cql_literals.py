"""cqlsh literal formats (COPY TO output): a tokenizer and a recursive-descent parser, optionally typed by CQL types."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

# cqlsh renders a collection, tuple or UDT element with `format_value(..., quote=True)`: text becomes '…' with ''
# for a quote, a backslash doubled and control characters shown as Python escapes (\n, \t, \x1f…); timestamps use
# `%Y-%m-%d %H:%M:%S.%f%z` (older versions `%Y-%m-%d %H:%M:%S%z`), quoted inside collections; doubles use %g, so
# 2.0 prints as `2`; booleans print `True`/`False`; a UDT prints `{field: value, …}` with null fields as `null`.


class CqlSyntaxError(ValueError):
    """A literal that cannot be read; ``position`` is the 0-based offset of the offending character."""

    def __init__(self, message: str, position: int) -> None:
        """Record the message and where it applies."""
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} at offset {self.position}"


# --- types -------------------------------------------------------------------------------------------------------

_SCALAR_ALIASES = {
    **dict.fromkeys(("text", "varchar", "ascii"), "text"),
    **dict.fromkeys(("int", "bigint", "smallint", "tinyint", "varint", "counter"), "int"),
    **dict.fromkeys(("double", "float"), "double"),
    "boolean": "boolean",
    "timestamp": "timestamp",
}
_ARITY = {"frozen": 1, "list": 1, "set": 1, "map": 2}


@dataclass(frozen=True, slots=True)
class CqlType:
    """A CQL type: a scalar (text, int, double, boolean, timestamp), list, set, map or a user type (udt)."""

    name: str
    params: tuple[CqlType, ...] = ()
    fields: tuple[tuple[str, CqlType], ...] = ()
    udt_name: str = ""

    def __str__(self) -> str:
        if self.name == "udt":
            return self.udt_name
        if self.params:
            return f"{self.name}<{', '.join(str(p) for p in self.params)}>"
        return self.name


def user_type(name: str, fields: Sequence[tuple[str, str]], udts: Mapping[str, CqlType] | None = None) -> CqlType:
    """A user-defined type from ``(field name, CQL type text)`` pairs in declaration order."""
    return CqlType("udt", fields=tuple((f, parse_type(t, udts)) for f, t in fields), udt_name=name)


_TYPE_TOKEN = re.compile(r"\s*([A-Za-z_]\w*|[<>,]|\S)")


def parse_type(text: str, udts: Mapping[str, CqlType] | None = None) -> CqlType:
    """Parse a CQL type such as ``map<text, frozen<list<map<text,text>>>>``; ``frozen<>`` is transparent.

    Args:
        text: the type as written in a CREATE TABLE statement.
        udts: user types by name, for names that are not built-in types.

    Raises:
        CqlSyntaxError: for an unknown type name or malformed text.
    """
    tokens = [(m.group(1), m.start(1)) for m in _TYPE_TOKEN.finditer(text)] + [("", len(text))]

    def one(i: int) -> tuple[CqlType, int]:
        name, at = tokens[i]
        lower = name.lower()
        if lower in _SCALAR_ALIASES:
            return CqlType(_SCALAR_ALIASES[lower]), i + 1
        if lower in _ARITY:
            params: list[CqlType] = []
            if tokens[i + 1][0] == "<":
                i += 1
                while not params or tokens[i][0] == ",":
                    param, i = one(i + 1)
                    params.append(param)
            if tokens[i][0] != ">" or len(params) != _ARITY[lower]:
                raise CqlSyntaxError(f"{lower} takes {_ARITY[lower]} type parameter(s) in <>", at)
            return (params[0] if lower == "frozen" else CqlType(lower, tuple(params))), i + 1
        if udts is not None and name in udts:
            return udts[name], i + 1
        raise CqlSyntaxError(f"unknown type {name!r}" if name else "missing type", at)

    result, i = one(0)
    if tokens[i][0]:
        raise CqlSyntaxError("unexpected text after the type", tokens[i][1])
    return result


# --- generic values (when no type is given) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CqlMap:
    """``{k: v, …}`` as (key, value) pairs in written order; ``{}`` parses as an empty CqlMap."""

    items: tuple[tuple[Any, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CqlSet:
    """``{a, b, …}`` in written order."""

    items: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class CqlUdt:
    """``{field: value, …}`` with unquoted (or double-quoted) field names, in written order."""

    fields: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Instant:
    """An unquoted timestamp such as ``2021-11-24 10:15:30+0000``, as epoch milliseconds."""

    ms: int


# --- timestamps ----------------------------------------------------------------------------------------------------

_EPOCH_DAY = date(1970, 1, 1).toordinal()
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"  # date
    r"(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"  # [ HH:MM[:SS[.fraction]]]
    r"(?:Z|([+-])(\d{2}):?(\d{2})?)?"  # zone: Z, +HH, +HHMM or +HH:MM; none means UTC
)


def parse_timestamp(text: str) -> int:
    """Epoch ms of a cqlsh/CQL timestamp text, e.g. ``2021-11-24 10:15:30.123000+0000`` or ``2021-11-24T10:15Z``.

    A text without a zone is UTC (SPEC C1). Digits below the millisecond are dropped: CQL timestamps hold ms.

    Raises:
        ValueError: if the text is not such a timestamp or names an impossible date.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    h, mi, sec = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 23 or mi > 59 or sec > 59:
        raise ValueError(f"not a time of day: {text!r}")
    # Plain integer arithmetic (date() checks the calendar): this runs for every timestamp of an import.
    days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
    seconds = ((days * 24 + h) * 60 + mi) * 60 + sec
    if sign:
        offset = (int(off_h) * 60 + int(off_m or 0)) * 60
        seconds = seconds - offset if sign == "+" else seconds + offset
    return seconds * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)


# --- text escapes ----------------------------------------------------------------------------------------------------

# cqlsh writes \\, \n, \r, \t and \xHH (and \uHHHH for what it cannot encode). Any other backslash is kept as
# written: csv writers of older cqlsh versions do not double a backslash, so a lone one can reach us.
_ESCAPE = re.compile(r"\\(?:([\\nrt])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U(000[0-9A-Fa-f]{5}|0010[0-9A-Fa-f]{4}))")
_SIMPLE_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def _unescape_one(m: re.Match[str]) -> str:
    simple = m.group(1)
    return _SIMPLE_ESCAPES[simple] if simple else chr(int(m.group(m.lastindex or 0), 16))


def unescape_text(text: str) -> str:
    """Undo cqlsh's display escapes of a text value (doubled backslashes, ``\\n``, ``\\xHH``…)."""
    return _ESCAPE.sub(_unescape_one, text) if "\\" in text else text


# --- tokenizer -------------------------------------------------------------------------------------------------------

# Tokens come from one `findall` (C speed): a tuple of the seven groups below, exactly one of them non-empty. Their
# offsets are only computed (with `finditer`) to report an error. The END token has every group empty.
Token = tuple[str, str, str, str, str, str, str]
# Group order = tuple order; the most frequent tokens come first, since the regex tries alternatives in order.
PUNCT, STRING, WORD, INSTANT, NUMBER, NAME, BAD = range(7)
_END: Token = ("", "", "", "", "", "", "")
_LEX = re.compile(
    r"\s*(?:"
    r"([{}\[\]():,])"
    # Backslash escapes never contain a quote, so a doubled quote is the only way a quote sits inside a string.
    r"|('(?:[^']|'')*')"
    r"|([+-]?[A-Za-z_]\w*)"
    r"|(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)(?![\w.:])"
    r"|([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])"
    r"|(\"(?:[^\"]|\"\")*\")"
    r"|(\S)"  # anything else: refused when a reader reaches it
    r")"
)


def tokenize(text: str) -> list[Token]:
    """The tokens of a cqlsh literal, ending with the END token (every group empty)."""
    tokens: list[Token] = _LEX.findall(text)
    tokens.append(_END)
    return tokens


def _offsets(text: str) -> list[int]:
    """The offset of each token of ``text`` (END last), for error messages."""
    return [m.start(m.lastindex or 0) for m in _LEX.finditer(text)] + [len(text)]


def _string(raw: str) -> str:
    value = raw[1:-1]
    if "''" in value:
        value = value.replace("''", "'")
    return unescape_text(value) if "\\" in value else value


class _Fail(Exception):
    """A parse failure at token ``index``; turned into a CqlSyntaxError with the token's offset."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def _describe(tok: Token) -> str:
    if tok == _END:
        return "the end of the text"
    if tok[STRING]:
        return "a quoted string"
    if tok[INSTANT]:
        return "a timestamp"
    if tok[NUMBER]:
        return f"the number {_number(tok[NUMBER])!r}"
    return repr(tok[NAME][1:-1] or tok[WORD] or tok[PUNCT])


def _fail(what: str, tokens: list[Token], i: int) -> _Fail:
    bad = tokens[i][BAD]
    if bad in ("'", '"'):
        return _Fail("unterminated quoted " + ("string" if bad == "'" else "name"), i)
    if bad:
        return _Fail(f"unexpected character {bad!r}", i)
    return _Fail(f"expected {what}, found {_describe(tokens[i])}", i)


def _number(raw: str) -> int | float:
    return float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)


def _timestamp(raw: str, i: int) -> int:
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise _Fail(f"invalid timestamp {raw!r}", i) from exc


# --- typed readers -------------------------------------------------------------------------------------------------

# A reader takes (tokens, index) and returns (value, next index). Readers are built once per type and cached, and
# loop inline: the import of a large export calls them for every field of every row.
Reader = Callable[[list[Token], int], tuple[Any, int]]
_SPECIAL_DOUBLES = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
_KEYWORDS = {"true": True, "false": False, "null": None}


def _read_text(tokens: list[Token], i: int) -> tuple[Any, int]:
    raw = tokens[i][STRING]
    if raw:
        return _string(raw), i + 1
    raise _fail("a quoted string", tokens, i)


def _read_int(tokens: list[Token], i: int) -> tuple[Any, int]:
    raw = tokens[i][NUMBER]
    if raw and type(value := _number(raw)) is int:
        return value, i + 1
    raise _fail("an integer", tokens, i)


def _read_double(tokens: list[Token], i: int) -> tuple[Any, int]:
    tok = tokens[i]
    if tok[NUMBER] and math.isfinite(value := float(tok[NUMBER])):
        return value, i + 1
    if tok[NUMBER] or tok[WORD].lower() in _SPECIAL_DOUBLES:
        raise _Fail(f"{tok[NUMBER] or tok[WORD]} is not a finite double", i)
    raise _fail("a number", tokens, i)


def _read_boolean(tokens: list[Token], i: int) -> tuple[Any, int]:
    word = tokens[i][WORD].lower()
    if word in ("true", "false"):
        return word == "true", i + 1
    raise _fail("True or False", tokens, i)


def _read_timestamp(tokens: list[Token], i: int) -> tuple[Any, int]:
    tok = tokens[i]
    if tok[STRING]:
        return _timestamp(_string(tok[STRING]), i), i + 1
    if tok[INSTANT]:
        return _timestamp(tok[INSTANT], i), i + 1
    if tok[NUMBER] and type(value := _number(tok[NUMBER])) is int:
        return value, i + 1  # cqlsh prints epoch ms for a date it cannot format
    raise _fail("a timestamp", tokens, i)


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
            raise _fail(repr(opener), tokens, i)
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
                raise _fail(f"',' or {closer!r}", tokens, i)

    return read


def _map_reader(read_key: Reader, read_value: Reader) -> Reader:
    def read(tokens: list[Token], i: int) -> tuple[Any, int]:
        if tokens[i][PUNCT] != "{":
            raise _fail("'{'", tokens, i)
        i += 1
        out: dict[Any, Any] = {}
        if tokens[i][PUNCT] == "}":
            return out, i + 1
        while True:
            key, j = read_key(tokens, i)
            if key in out:
                raise _Fail(f"duplicate map key {key!r}", i)
            if tokens[j][PUNCT] != ":":
                raise _fail("':'", tokens, j)
            out[key], i = read_value(tokens, j + 1)
            punct = tokens[i][PUNCT]
            if punct == ",":
                i += 1
            elif punct == "}":
                return out, i + 1
            else:
                raise _fail("',' or '}'", tokens, i)

    return read


def _udt_reader(t: CqlType) -> Reader:
    readers = {name: reader_for(ft) for name, ft in t.fields}
    names = [name for name, _ in t.fields]

    def read(tokens: list[Token], i: int) -> tuple[Any, int]:
        if tokens[i][PUNCT] != "{":
            raise _fail("'{'", tokens, i)
        i += 1
        seen: dict[str, Any] = {}
        if tokens[i][PUNCT] == "}":
            return dict.fromkeys(names), i + 1
        while True:
            tok = tokens[i]
            name = tok[WORD] or tok[NAME][1:-1].replace('""', '"')
            if not name:
                raise _fail(f"a field name of {t}", tokens, i)
            read_field = readers.get(name)
            if read_field is None:
                raise _Fail(f"unknown field {name!r} of {t}", i)
            if name in seen:
                raise _Fail(f"duplicate field {name!r}", i)
            if tokens[i + 1][PUNCT] != ":":
                raise _fail("':'", tokens, i + 1)
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
                raise _fail("',' or '}'", tokens, i)

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
        return _string(tok[STRING]), i + 1
    if tok[NUMBER]:
        return _number(tok[NUMBER]), i + 1
    if tok[INSTANT]:
        return Instant(_timestamp(tok[INSTANT], i)), i + 1
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
    raise _fail("a value", tokens, i)


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
                raise _fail("a field name", toks, j)
            if toks[j + 1][PUNCT] != ":":
                raise _fail("':'", toks, j + 1)
            value, j = _read_any(toks, j + 2)
            return (name, value), j

        fields, i = _sequence_reader(read_field, "{", "}")(tokens, i)
        return CqlUdt(tuple(fields)), i
    # The first item decides between a map and a set (END ends every token list, so the index is valid).
    if tokens[_read_any(tokens, i + 1)[1]][PUNCT] == ":":

        def read_pair(toks: list[Token], j: int) -> tuple[Any, int]:
            key, j = _read_any(toks, j)
            if toks[j][PUNCT] != ":":
                raise _fail("':'", toks, j)
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
        if tokens[i] != _END:
            raise _fail("the end of the value", tokens, i)
    except _Fail as failure:
        raise CqlSyntaxError(failure.message, _offsets(text)[failure.index]) from None
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
