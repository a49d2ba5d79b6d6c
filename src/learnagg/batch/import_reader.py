"""Reading an import file: CSV records of either dialect (gzip detected), the column plan and row decoding."""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

from learnagg.batch.import_tables import Column, Fallback, TableSpec
from learnagg.errors import InputError

# One `question` list of a long assessment can exceed the csv module's default field limit (128 KiB).
_FIELD_LIMIT = 64 * 1024 * 1024


class BadRecord(ValueError):
    """A record that cannot be imported; the caller adds the file name and line number."""


@contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
    """The file opened for binary reading, or standard input for ``-``; InputError when it does not exist."""
    if path == "-":
        yield sys.stdin.buffer
        return
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as fh:
        yield fh


def _reader(text: IO[str], dialect: str) -> Iterator[list[str]]:
    if dialect == "cqlsh":
        # cqlsh's COPY dialect: quote ", escape \ and (because they differ) no doubled quotes.
        return csv.reader(text, delimiter=",", quotechar='"', escapechar="\\", doublequote=False, strict=True)
    return csv.reader(text, strict=True)  # D5 (docs/batch.md#exhaust-reports): RFC 4180, embedded quotes doubled


def read_records(raw: IO[bytes], path: str, dialect: str) -> Generator[tuple[int, list[str]], None, None]:
    """(first line number, fields) of every non-blank record; a gzip stream is unpacked on the fly."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(Any, raw))
    data: Any = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == b"\x1f\x8b" else buffered
    text = io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    reader = _reader(text, dialect)
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    line = 0
    try:
        while True:
            start = line + 1
            try:
                record = next(reader, None)
            except csv.Error as exc:
                raise InputError(f"{path}:{start}: not valid CSV: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{start}: not UTF-8 text") from exc
            except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
                raise InputError(f"{path}:{start}: cannot read: {exc}") from exc
            if record is None:
                return
            line = reader.line_num  # type: ignore[attr-defined]
            if len(record) > 1 or (record and record[0].strip()):  # blank lines carry no record
                yield start, record
    finally:
        text.detach()  # the caller owns (and closes) the file; a collected wrapper would close it


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """Which field of a record feeds which column, decided once from the header (or the default layout)."""

    fields: tuple[tuple[int, Column], ...]
    width: int
    written: tuple[str, ...]  # our columns written for every row, keys first
    fallbacks: tuple[Fallback, ...]


def plan_columns(spec: TableSpec, names: Sequence[str], where: str) -> tuple[ColumnPlan, list[str]]:
    """Map the named fields onto the spec; unknown names are ignored (and returned), a missing key is refused."""
    fields: list[tuple[int, Column]] = []
    ignored: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(names):
        lower = name.strip().lower()
        if lower in seen:
            raise InputError(f"{where}: column {lower!r} appears twice")
        seen.add(lower)
        column = spec.column(lower)
        if column is None:
            ignored.append(lower)
        else:
            fields.append((index, column))
    missing = [k for k in spec.keys if k not in seen]
    if missing:
        raise InputError(f"{where}: key column {missing[0]!r} is missing")
    fallbacks = tuple(f for f in spec.fallbacks if f.source in seen)
    stored = [c.name for _, c in fields if c.stored]
    targets = [f.target for f in fallbacks if f.target not in stored]
    written = (*spec.keys, *(c for c in [*stored, *targets] if c not in spec.keys))
    return ColumnPlan(tuple(fields), len(names), written, fallbacks), ignored


def decode_row(plan: ColumnPlan, spec: TableSpec, record: Sequence[str], zone: str) -> dict[str, Any]:
    """The row to write for one record: the planned columns decoded, legacy fallbacks applied; BadRecord if not."""
    if len(record) != plan.width:
        raise BadRecord(f"expected {plan.width} fields, found {len(record)}")
    values: dict[str, Any] = {}
    for index, column in plan.fields:
        try:
            values[column.name] = column.decode(record[index])
        except ValueError as exc:  # CqlSyntaxError is a ValueError and names its offset
            raise BadRecord(f"column {column.name}: {exc}") from exc
    for key in spec.keys:
        if values[key] is None:
            values[key] = ""  # an empty key field is the empty string: keys are never null
    for fallback in plan.fallbacks:
        legacy = values.get(fallback.source)
        if values.get(fallback.target) is None and legacy is not None:
            try:
                values[fallback.target] = fallback.convert(legacy, zone)
            except ValueError as exc:
                raise BadRecord(f"column {fallback.source}: {exc}") from exc
    return {name: values.get(name) for name in plan.written}


def is_header_row(spec: TableSpec, record: Sequence[str]) -> bool:
    """A header row names every key column (a data row holding those exact texts in every key is not credible)."""
    names = {f.strip().lower() for f in record}
    return all(k in names for k in spec.keys)


def bytes_read(raw: IO[bytes]) -> int:
    """How far the file has been read, for progress reports (0 for a pipe)."""
    try:
        return raw.tell()
    except (OSError, ValueError):  # a pipe
        return 0
