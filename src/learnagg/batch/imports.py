"""`learnagg import`: cqlsh COPY TO exports of the reference tables and the reference's archived assessment files."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from sqlalchemy import Connection, or_

from learnagg.adapters.store.dialects import Dialect
from learnagg.app import App
from learnagg.batch.import_reader import (
    BadRecord,
    bytes_read,
    decode_row,
    is_header_row,
    open_binary,
    plan_columns,
    read_records,
)
from learnagg.batch.import_tables import SPECS, TABLE_NAMES, TableSpec
from learnagg.batch.progress import NoProgress, Progress
from learnagg.errors import InputError
from learnagg.services import activity_agg
from learnagg.services.group_cache import invalidate_for_users

MAX_CHUNK_ROWS = 1_000_000  # a bigger executemany only costs memory (the default: setting `imports.chunk_rows`)


@dataclass
class ImportResult:
    """What one import did, for the summary line and ``--json``."""

    table: str
    file: str
    header: bool
    columns: list[str]
    ignored_columns: list[str]
    records: int = 0
    rows_written: int = 0
    users: set[str] = field(default_factory=set, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary."""
        return {k: v for k, v in asdict(self).items() if k != "users"}


# --- writing ---------------------------------------------------------------------------------------------------------


def _statement(dialect: Dialect, spec: TableSpec, written: Sequence[str]) -> Any:
    replace = [c for c in written if c not in spec.keys]
    if not spec.newer_wins or not replace:
        return dialect.upsert(spec.table, replace=replace)
    table = spec.table
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    # docs/reference/compatibility.md#11: a live row rewritten after it was archived wins over the archived copy.
    newer = or_(table.c.updated_on.is_(None), table.c.updated_on <= stmt.excluded.updated_on)
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in replace}, where=newer)


def _flush(conn: Connection, stmt: Any, chunk: dict[tuple[Any, ...], dict[str, Any]]) -> int:
    # Keyed by primary key: one INSERT … ON CONFLICT may not touch a row twice (PostgreSQL), the later line wins.
    if chunk:
        conn.execute(stmt, list(chunk.values()))
    count = len(chunk)
    chunk.clear()
    return count


class _Reporter:
    """Reports an import as one step named after the table: bytes of a file (its size known), records of a pipe."""

    def __init__(self, progress: Progress, table: str, path: str) -> None:
        self._progress = progress
        self._table = table
        self._bytes = path != "-" and os.path.isfile(path)
        self._done = 0
        if self._bytes:
            progress.start(table, os.path.getsize(path), unit="bytes")
        else:
            progress.start(table, None, unit="records")

    def report(self, records: int, raw: IO[bytes]) -> None:
        now = bytes_read(raw) if self._bytes else records
        self._progress.advance(self._table, max(now - self._done, 0))
        self._done = max(now, self._done)


def import_file(
    app: App,
    table: str,
    path: str,
    *,
    columns: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import one export file into its table, all or nothing, in one write transaction.

    - Dialect: cqlsh exports use cqlsh's CSV options (QUOTE ", ESCAPE \\, no doubled quotes) and cqlsh literals;
      archived assessment files are D5 CSV with ``question`` as JSON. Either may be gzipped.
    - Header: the first record is a header when it names every key column (cqlsh HEADER=TRUE); columns this table
      does not store are ignored and reported. Without a header the file holds the reference layout in cqlsh's
      default order (keys, then the others by name) or ``columns``; a record of another width is refused.
    - All or nothing: chunks of ``chunk_rows`` rows upserted with executemany in one transaction; the first bad
      record raises ``FILE:LINE: reason`` and nothing is written. Re-importing a file gives the same rows.
    - Upsert: only the file's columns are written, other columns of an existing row are kept. An empty field is
      null, except in a key column where it is the empty string (keys are never null). An archived row never
      replaces a live row with a later ``updated_on`` (docs/reference/compatibility.md#11: the live row wins).
    - Score metrics are not recomputed (`learnagg migrate scores` does that).

    Args:
        app: the application (store, settings, cache).
        table: a key of :data:`~learnagg.batch.import_tables.SPECS`.
        path: the file, or ``-`` for standard input; gzip is detected.
        columns: the column names of a file without a header row (cqlsh's ``COPY table (a, b) TO``).
        chunk_rows: rows per executemany; None: setting `imports.chunk_rows`.
        progress: told one step named after the table (the file's bytes, or the records of standard input),
            then what each chunk read.

    Raises:
        InputError: an unknown table, an unreadable file or a bad record (``FILE:LINE: reason``).
    """
    spec = SPECS.get(table)
    if spec is None:
        raise InputError(f"unknown table {table!r}: choose one of {', '.join(TABLE_NAMES)}")
    if chunk_rows is None:
        chunk_rows = app.settings.imports.chunk_rows
    if not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
        raise InputError(f"--chunk-rows must be between 1 and {MAX_CHUNK_ROWS}")
    zone = app.settings.timezone
    track_users = table == "user_activity_agg" and app.cache.enabled
    # Enrolments and batches move `activity_agg`: their batches are recounted before the import commits.
    batches: set[tuple[str, str]] | None = set() if table in ("user_enrolments", "course_batch") else None
    with open_binary(path) as raw, closing(read_records(raw, path, spec.dialect)) as records:
        first = next(records, None)
        has_header = columns is None and first is not None and is_header_row(spec, first[1])
        if has_header and first is not None:
            names: Sequence[str] = first[1]
            where = f"{path}:{first[0]}"
        else:
            names = list(columns) if columns is not None else [c.name for c in spec.columns]
            where = "--columns" if columns is not None else path
        plan, ignored = plan_columns(spec, names, where)
        result = ImportResult(table, path, has_header, list(plan.written), ignored)
        pending = [] if has_header or first is None else [first]
        stmt = _statement(app.store.dialect, spec, plan.written)
        key_names = spec.keys
        reporter = _Reporter(progress or NoProgress(), table, path)
        with app.store.write() as conn:
            chunk: dict[tuple[Any, ...], dict[str, Any]] = {}
            for line, record in itertools.chain(pending, records):
                try:
                    row = decode_row(plan, spec, record, zone)
                except BadRecord as exc:
                    hint = "" if has_header or columns is not None else " (no header row: see --columns)"
                    raise InputError(f"{path}:{line}: {exc}{hint}") from exc
                chunk[tuple(row[k] for k in key_names)] = row
                result.records += 1
                if track_users:
                    result.users.add(row["user_id"])
                if batches is not None:
                    batches.add((row["courseid"], row["batchid"]))
                if len(chunk) >= chunk_rows:
                    result.rows_written += _flush(conn, stmt, chunk)
                    reporter.report(result.records, raw)
            result.rows_written += _flush(conn, stmt, chunk)
            if batches:
                activity_agg.refresh(conn, app.store.dialect, batches, app.clock())
        reporter.report(result.records, raw)
    if result.users:
        # docs/api.md#group-aggregates: cached group aggregates of these learners are stale now (after commit).
        invalidate_for_users(app.store, app.cache, result.users)
    return result
