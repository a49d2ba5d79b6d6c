"""`learnagg archive run|delete`: assessment archival to object storage and verified deletion
(docs/batch.md#assessment-archival)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from learnagg.adapters.objectstore import open_store
from learnagg.batch.archival import ArchivalScope, ArchiveSummary, run_archive
from learnagg.batch.archival_delete import DeleteSummary, run_delete
from learnagg.batch.spark.archival import run_archive_spark
from learnagg.batch.spark.session import engine_of
from learnagg.domain.archive_read import parse_timestamp
from learnagg.entrypoints.cli.common import echo_json, open_app
from learnagg.entrypoints.cli.progress import progress_bar
from learnagg.errors import InputError, LearnaggError

app = typer.Typer(
    help="Assessment archival (docs/batch.md): archive attempts to LEARNAGG_BLOB_URL, then delete them verified.",
    no_args_is_help=True,
)

BatchId = Annotated[str | None, typer.Option("--batch-id", help="One batch (with --collection-id).")]
CollectionId = Annotated[str | None, typer.Option("--collection-id", help="The course of --batch-id.")]
BatchIds = Annotated[
    list[str] | None,
    typer.Option("--batch-ids", help="Batches, comma-separated or repeated (the reference's batchFilters)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON summary instead of a table.")]


class EngineName(StrEnum):
    """The batch engines (docs/spark.md)."""

    python = "python"
    spark = "spark"


Engine = Annotated[
    EngineName | None,
    typer.Option("--engine", help="python (in process) or spark (docs/spark.md); default: setting batch.engine."),
]


def _scope(batch_id: str | None, collection_id: str | None, batch_ids: list[str] | None) -> ArchivalScope:
    ids = tuple(b.strip() for value in batch_ids or () for b in value.split(","))
    if any(not b for b in ids):
        # Dropping a blank id would widen the scope: `--batch-ids ""` would archive or delete every batch.
        raise InputError("--batch-ids must not hold a blank id")
    if any("\x00" in i for i in (*ids, batch_id or "", collection_id or "")):
        raise InputError("batch and collection ids must not contain a NUL character")
    scope = ArchivalScope(batch_id, collection_id, ids)
    scope.validate()
    return scope


def _before(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise InputError(f"--before {value!r}: use a date like 2024-01-01 or 2024-01-01T00:00:00Z") from None


def _print(summary: ArchiveSummary | DeleteSummary, as_json: bool) -> None:
    data: dict[str, Any] = summary.to_json()
    if as_json:
        echo_json(data)
    else:
        table = Table(title=f"learnagg archive {'run' if data['mode'] == 'archive' else 'delete'}", show_header=False)
        table.add_column("", style="bold")
        table.add_column("", justify="right")
        for name, value in data.items():
            if name not in ("mode", "failures"):
                table.add_row(name.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
        Console().print(table)
        for failure in data["failures"]:
            print(f"FAILED {failure}", file=sys.stderr)
    if data["failures"]:
        first = data["failures"][0]
        raise LearnaggError(f"{len(data['failures'])} failed (first: {first['requestId']}: {first['error']})")


@app.command("run")
def run(
    batch_id: BatchId = None,
    collection_id: CollectionId = None,
    batch_ids: BatchIds = None,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Archive only whole weeks that end by this date (UTC), e.g. 2024-01-01."),
    ] = None,
    as_json: AsJson = False,
    engine: Engine = None,
) -> None:
    """Write one gzipped CSV per (course, batch, year, week) of assessment_aggregator and record it.

    Weeks already archived are skipped; a failed week is retried on the next run (at most 3 times). Files go to
    <LEARNAGG_BLOB_URL>/<archival prefix><batchId>_<collectionId>/<year>-<week>-<epochMillis>.csv.gz. Runs on any
    number of machines may start together: each week is claimed with a lease, so each is archived once.
    """
    scope = _scope(batch_id, collection_id, batch_ids)
    cutoff = _before(before)
    with open_app() as application:
        blobs = open_store(application.settings.blob_url)
        runner = (
            run_archive_spark if engine_of(application.settings, engine and engine.value) == "spark" else run_archive
        )
        with progress_bar() as bar:
            summary = runner(application, blobs, scope, before=cutoff, progress=bar)
    _print(summary, as_json)


@app.command("delete")
def delete(
    batch_id: BatchId = None,
    collection_id: CollectionId = None,
    batch_ids: BatchIds = None,
    as_json: AsJson = False,
) -> None:
    """Verify each archived file (row count, checksum) and delete exactly its rows from assessment_aggregator.

    Scores are recomputed with the archived attempts first, so best scores, attempt counts and agg_details never
    lose an attempt; rows rewritten after archiving are kept. A missing or mismatched file deletes nothing.
    Concurrent runs split the archives by lease, and never delete while the same week is being archived.
    """
    scope = _scope(batch_id, collection_id, batch_ids)
    with open_app() as application:
        blobs = open_store(application.settings.blob_url)
        with progress_bar() as bar:
            summary = run_delete(application, blobs, scope, progress=bar)
    _print(summary, as_json)
