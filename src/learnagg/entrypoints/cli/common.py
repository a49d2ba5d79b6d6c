"""Helpers shared by the CLI command groups: building the app, schema checks, JSON output, input files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
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
    """Open a text input file, or standard input for ``-``."""
    if path == "-":
        yield sys.stdin
        return
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    with p.open(encoding="utf-8") as fh:
        yield fh


def echo_json(value: Any) -> None:
    """Print one compact JSON object per line."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
