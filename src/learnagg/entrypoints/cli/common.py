"""Helpers shared by the CLI command groups: building the app, schema checks, JSON output, input files."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.exc import OperationalError

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.errors import InputError, StoreUnavailable, first_line


@contextmanager
def open_app(*, require_schema: bool = True) -> Iterator[bootstrap.App]:
    """Build the app from settings; refuse to run on a database that `learnagg init` has not prepared."""
    app = bootstrap.build()
    try:
        if require_schema:
            try:
                current = schema.current_revision(app.store)
            except OperationalError as exc:
                raise StoreUnavailable(f"cannot open the database: {first_line(exc)}") from exc
            if current != schema.head_revision():
                raise StoreUnavailable("the database schema is missing or out of date: run 'learnagg init' first")
        yield app
    finally:
        app.close()


@contextmanager
def open_input(path: str) -> Iterator[TextIO]:
    """Open a text input file, or standard input for ``-``; bytes that are not UTF-8 are a one-line InputError.

    Prefer :func:`input_lines`, whose error also names the line.
    """
    try:
        if path == "-":
            yield sys.stdin
            return
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: no such file")
        with p.open(encoding="utf-8") as fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc


def input_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8 file, or of standard input for ``-``.

    Each line is decoded on its own, so bytes that are not UTF-8 are refused as ``FILE:LINE: not UTF-8 text``
    (an InputError) naming their line; a UTF-8 byte order mark at the start is skipped.
    """
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream already decoded (tests, embedding)
            yield from enumerate(sys.stdin, start=1)
            return
        yield from _decoded(path, stream)
        return
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    with p.open("rb") as fh:
        yield from _decoded(path, fh)


def _decoded(path: str, lines: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line)") from exc


def echo_json(value: Any) -> None:
    """Print one compact JSON object per line."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
