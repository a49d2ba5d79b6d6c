"""`learnagg import TABLE FILE`: move data over from the reference platform (cqlsh exports, archived files)."""

from __future__ import annotations

import sys
import time
from enum import Enum
from typing import Annotated

import typer

from learnagg.batch.import_tables import TABLE_NAMES
from learnagg.batch.imports import MAX_CHUNK_ROWS, ImportResult, import_file
from learnagg.entrypoints.cli.common import echo_json, open_app
from learnagg.entrypoints.cli.progress import progress_bar
from learnagg.errors import InputError

ImportTable = Enum("ImportTable", {name: name for name in TABLE_NAMES}, type=str)  # type: ignore[misc]

_HELP = "\n\n".join(
    [
        "Import a cqlsh COPY TO export of a reference table, or an archived assessment file of the reference.",
        "TABLE is user_activity_agg, assessment_aggregator, user_enrolments, user_content_consumption or "
        "course_batch (cqlsh CSV: QUOTE '\"', ESCAPE '\\', values in cqlsh's literal format such as {'k': 1}, "
        "['a'], {id: 'q1', ...} and 2021-11-24 10:15:30.123000+0000), or archived-assessments (a .csv.gz "
        "assessment archive, docs/batch.md: CSV with question as JSON). FILE may be gzipped; - reads standard input.",
        "Export with HEADER=TRUE (and DOUBLEPRECISION=17 to keep every digit of a double). Without a header row "
        "the file must hold the reference table's columns in cqlsh's default order (keys, then the other columns "
        "sorted by name), or the columns named with --columns.",
        "The whole file is imported in one transaction: a bad record refuses the file with FILE:LINE: reason and "
        "nothing is written. Only the file's columns are written; importing the same file again gives the same "
        "rows. Score metrics are not recomputed: run 'learnagg migrate scores' after importing assessment rows.",
    ]
)


def _summary(result: ImportResult, seconds: float) -> str:
    rate = result.records / seconds if seconds > 0 else 0.0
    ignored = f"; ignored columns: {', '.join(result.ignored_columns)}" if result.ignored_columns else ""
    return (
        f"imported {result.records} record(s) into {result.table} ({result.rows_written} row(s) written) "
        f"from {result.file} in {seconds:.2f} s ({rate:,.0f} records/s){ignored}"
    )


def register(app: typer.Typer) -> None:
    """Add the top-level `import` command."""

    @app.command("import", help=_HELP)
    def import_command(
        table: Annotated[
            ImportTable, typer.Argument(metavar="TABLE", help="The reference table, or archived-assessments.")
        ],
        file: Annotated[str, typer.Argument(metavar="FILE", help="The export (.csv or .csv.gz); - for stdin.")],
        columns: Annotated[
            str | None,
            typer.Option("--columns", help="Comma-separated column names of a file without a header row."),
        ] = None,
        chunk_rows: Annotated[
            int | None,
            typer.Option(
                "--chunk-rows",
                min=1,
                max=MAX_CHUNK_ROWS,
                show_default="setting imports.chunk_rows, LEARNAGG_IMPORTS__CHUNK_ROWS",
                help="Rows per batched upsert.",
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
    ) -> None:
        names = [c.strip() for c in columns.split(",")] if columns is not None else None
        if names is not None and not all(names):
            raise InputError("--columns: empty column name")
        started = time.monotonic()
        with open_app() as la, progress_bar({table.value: f"import {table.value}"}, transient=True) as bar:
            result = import_file(la, table.value, file, columns=names, chunk_rows=chunk_rows, progress=bar)
        seconds = time.monotonic() - started
        if as_json:
            echo_json({**result.to_json(), "seconds": round(seconds, 3)})
        print(_summary(result, seconds), file=sys.stderr)
