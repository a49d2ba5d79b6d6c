"""Rows straight from the driver's cursor, as plain tuples: for bulk reads whose columns need no result
processing (text, integers, doubles), where building a SQLAlchemy row per record would cost more than the record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Select


def raw_chunks(conn: Connection, stmt: Select[Any], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``stmt`` as plain tuples, ``size`` at a time, straight from the driver's cursor in ``conn``'s
    transaction: a server-side cursor on PostgreSQL, ``fetchmany`` on SQLite; at most ``size`` rows in memory.

    Only for statements whose columns need no result processing (text, integers, doubles).
    """
    compiled = stmt.compile(dialect=conn.dialect)
    params: Any = compiled.params
    if conn.dialect.positional:
        params = [compiled.params[name] for name in compiled.positiontup or ()]
    raw: Any = conn.connection.dbapi_connection
    postgres = conn.dialect.name == "postgresql"
    cursor = raw.cursor(name=f"learnagg_raw_{id(stmt):x}") if postgres else raw.cursor()
    try:
        if postgres:
            cursor.itersize = size
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()
