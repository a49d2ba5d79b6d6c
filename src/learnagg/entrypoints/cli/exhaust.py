"""`learnagg exhaust run` (the request runner, docs/batch.md#exhaust-reports) and `learnagg report progress|response`
(one report now)."""

from __future__ import annotations

import sys
from contextlib import suppress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from learnagg.adapters.objectstore import open_store
from learnagg.batch.exhaust_files import report_time, write_report
from learnagg.batch.exhaust_runner import run_exhaust
from learnagg.batch.progress_exhaust import read_batch
from learnagg.batch.spark.reports import write_report_spark
from learnagg.batch.spark.session import engine_of
from learnagg.domain import exhaust as dx
from learnagg.entrypoints.cli.archive import Engine
from learnagg.entrypoints.cli.common import echo_json, open_app
from learnagg.entrypoints.cli.plural import counted
from learnagg.entrypoints.cli.progress import progress_bar
from learnagg.errors import InputError, NotFound

app = typer.Typer(
    help="Exhaust requests (docs/batch.md): produce the pending progress and response reports.", no_args_is_help=True
)
report_app = typer.Typer(help="Run one report of one batch now, to a local CSV file.", no_args_is_help=True)


class Job(StrEnum):
    """The report keys of the two exhausts."""

    progress = "progress"
    response = "response"


@app.command("run")
def run(
    job: Annotated[Job | None, typer.Option("--job", help="Only this exhaust (default: both).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary instead of a table.")] = False,
    engine: Engine = None,
) -> None:
    """Process the pending requests once: SUBMITTED, FAILED (fewer than 3 tries) and crashed ones whose lease ended.

    Files go to <LEARNAGG_BLOB_URL>/<dataset>/<requestId>/<batchId>_<report>_<yyyyMMdd>.zip. A request that fails is
    recorded FAILED with its message (and retried on the next run); the command itself still succeeds.
    """
    datasets = [dx.DATASETS[job.value]] if job else None
    with open_app() as application:
        blobs = open_store(application.settings.blob_url)
        summary = run_exhaust(application, blobs, datasets=datasets, engine=engine and engine.value).to_json()
    if as_json:
        echo_json(summary)
        return
    table = Table(title="learnagg exhaust run", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in summary.items():
        if name != "failures":
            table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    for failure in summary["failures"]:
        print(f"FAILED {failure['requestId']}: {failure['error']}", file=sys.stderr)


class _Counting:
    """A text stream that counts what goes through it for the progress bar."""

    def __init__(self, out: Any, on_write: Any) -> None:
        self._out = out
        self._on_write = on_write

    def write(self, text: str) -> int:
        self._out.write(text)
        self._on_write(text)
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def _create(path: Path) -> TextIO:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _report(key: str, batch_id: str, out_dir: Path, channel: str | None, engine: str | None) -> None:
    if "\x00" in batch_id:  # no stored id holds NUL (PostgreSQL cannot even compare one)
        raise NotFound(f"batch {batch_id!r} does not exist")
    with open_app() as application:
        write = write_report_spark if engine_of(application.settings, engine) == "spark" else write_report
        with application.store.read() as conn:
            info = read_batch(conn, batch_id)  # NotFound: one line, nothing written
        now = application.clock()
        day = report_time(now, application.settings.report.timezone).strftime("%Y%m%d")
        name = f"{batch_id}_{key}_{day}.csv"
        if "/" in name or "\\" in name:  # the file must stay inside --out
            raise InputError(f"batch {batch_id!r}: its id cannot name a file")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {str(out_dir)!r}: cannot create the folder: {exc.strerror or exc}") from None
        path = out_dir / name
        blobs = open_store(application.settings.blob_url)
        fh = _create(path)  # before the try: a file that could not be created is not ours to remove
        try:
            with progress_bar({key: f"{key} report"}) as bar, fh:
                bar.start(key, None, unit="lines")
                stream: Any = _Counting(fh, lambda text: bar.advance(key, text.count("\n")))
                rows = write(application, blobs, dx.DATASETS[key], batch_id, info.course_id, stream, channel)
        except BaseException:
            with suppress(FileNotFoundError):
                path.unlink()
            raise
    print(f"{path}\t{counted(rows, 'row')}")


BatchOpt = Annotated[str, typer.Option("--batch-id", help="The batch to report on.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder of the CSV file (created if missing).")]
ChannelOpt = Annotated[
    str | None, typer.Option("--channel", help="Requesting channel: keep only its learners (docs/batch.md).")
]


@report_app.command("progress")
def progress(batch_id: BatchOpt, out: OutOpt = Path("."), channel: ChannelOpt = None, engine: Engine = None) -> None:
    """Write <out>/<batchId>_progress_<yyyyMMdd>.csv (docs/batch.md) and print its path and row count."""
    _report("progress", batch_id, out, channel, engine and engine.value)


@report_app.command("response")
def response(batch_id: BatchOpt, out: OutOpt = Path("."), channel: ChannelOpt = None, engine: Engine = None) -> None:
    """Write <out>/<batchId>_response_<yyyyMMdd>.csv (docs/batch.md, archived attempts included) and print its path."""
    _report("response", batch_id, out, channel, engine and engine.value)
