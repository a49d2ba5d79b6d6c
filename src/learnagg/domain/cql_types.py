"""CQL types (as CREATE TABLE writes them), the untyped value records of cqlsh literals, and the syntax error."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


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
