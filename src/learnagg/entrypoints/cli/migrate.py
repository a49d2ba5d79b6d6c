"""`learnagg migrate …`: the score-metric migration (docs/batch.md#migrations-and-imports), with a progress bar and a
summary of changes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from learnagg.batch.activity_agg_migration import migrate_activity_agg
from learnagg.batch.migrate_scores import STEP_BACKFILL, STEP_LEGACY, migrate_scores
from learnagg.domain.legacy_agg import MigrationSummary
from learnagg.entrypoints.cli.common import echo_json, open_app
from learnagg.entrypoints.cli.progress import progress_bar
from learnagg.errors import InputError

app = typer.Typer(
    help="Data migrations: score metrics (docs/jobs/assessment.md#s1) and the activity_agg table; idempotent, "
    "with a dry run.",
    no_args_is_help=True,
)

BatchIds = Annotated[
    list[str] | None,
    typer.Option("--batch-id", help="Only this batch; repeat the option for several. Default: every batch."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count what would change; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout instead of a table.")]
# Upper bounds keep a transaction (and its memory) sane; typer refuses anything above with a usage error.
MAX_CHUNK_ROWS = 1_000_000
MAX_CHUNK_LEARNERS = 100_000
ChunkRows = Annotated[
    int | None,
    typer.Option(
        "--chunk-rows",
        min=1,
        max=MAX_CHUNK_ROWS,
        show_default="setting migration.chunk_rows, LEARNAGG_MIGRATION__CHUNK_ROWS",
        help="user_activity_agg rows per transaction (legacy-int step).",
    ),
]
ChunkLearners = Annotated[
    int | None,
    typer.Option(
        "--chunk-learners",
        min=1,
        max=MAX_CHUNK_LEARNERS,
        show_default="setting migration.chunk_learners, LEARNAGG_MIGRATION__CHUNK_LEARNERS",
        help="Learners per transaction (backfill step).",
    ),
]


_LABELS = {STEP_LEGACY: "legacy agg ints", STEP_BACKFILL: "score backfill"}


def _scope(batch_ids: list[str] | None) -> list[str] | None:
    ids = [b.strip() for b in batch_ids or []]
    if any(not b for b in ids):
        raise InputError("--batch-id must not be blank")
    return ids or None


def _report(summary: MigrationSummary, as_json: bool) -> None:
    if as_json:
        echo_json(summary.to_json())
        return
    title = f"learnagg {summary.command}" + (" (dry run: nothing written)" if summary.dry_run else "")
    table = Table(title=title)
    table.add_column("")
    for step in summary.steps:
        table.add_column(step.step, justify="right")
    for label in ("rows examined", "rows changed", "rows created", "keys added", "keys updated"):
        table.add_row(label, *(f"{getattr(step, label.replace(' ', '_')):,}" for step in summary.steps))
    scope = "batches " + ", ".join(summary.batch_ids) if summary.batch_ids else "all batches"
    table.caption = f"{scope}; {summary.seconds:.2f} s"
    Console().print(table)


@app.command("scores")
def scores(
    batch_ids: BatchIds = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    chunk_rows: ChunkRows = None,
    chunk_learners: ChunkLearners = None,
) -> None:
    """Copy legacy `agg` ints into `aggregates` where absent, then recompute score, max_score, attempts_count and
    agg_details of every learner with attempts (docs/jobs/assessment.md#s1). No certificate requests are sent;
    a second run changes nothing."""
    scope = _scope(batch_ids)
    with open_app() as la, progress_bar(_LABELS) as bar:
        summary = migrate_scores(
            la, batch_ids=scope, dry_run=dry_run, chunk_rows=chunk_rows, chunk_learners=chunk_learners, progress=bar
        )
    _report(summary, as_json)


@app.command("agg-to-aggregates")
def agg_to_aggregates(
    batch_ids: BatchIds = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    chunk_rows: ChunkRows = None,
) -> None:
    """Copy legacy integer `agg` values into `aggregates` as doubles, never overwriting a key already there;
    `agg_last_updated` is set only where absent and `agg` is left as it is
    (docs/reference/data-model.md#merged-view)."""
    scope = _scope(batch_ids)
    with open_app() as la, progress_bar(_LABELS) as bar:
        summary = migrate_scores(
            la, batch_ids=scope, dry_run=dry_run, legacy_only=True, chunk_rows=chunk_rows, progress=bar
        )
    _report(summary, as_json)


@app.command("activity-agg")
def activity_agg(dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Build the per-batch `activity_agg` table (enrolledCount, completedCount, completionPercentage) from
    `user_enrolments` for existing data; a second run changes nothing."""
    with open_app() as la:
        summary = migrate_activity_agg(la, dry_run=dry_run)
    if as_json:
        echo_json({"command": "migrate activity-agg", "dry_run": dry_run, **summary.to_json()})
        return
    table = Table(title="learnagg migrate activity-agg" + (" (dry run: nothing written)" if dry_run else ""))
    table.add_column("")
    table.add_column("batches", justify="right")
    for label, value in summary.to_json().items():
        table.add_row(label, f"{value:,}")
    Console().print(table)
