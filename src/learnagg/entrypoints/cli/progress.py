"""The one Rich adapter of the job progress interface: a bar per step on stderr, hidden when it is not a terminal.

Every command that shows a bar (archive, migrate, import, report) goes through :func:`progress_bar`; benchmarks
print their phases as ``bench: <phase>`` lines with :func:`phase_lines` instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBar
from rich.text import Text

from learnagg.batch.progress import Phases


def _amount(value: float, unit: str) -> str:
    return filesize.decimal(int(value)) if unit == "bytes" else f"{value:,.0f}"


class CountColumn(ProgressColumn):
    """Done (of total) in the step's unit: ``1,200/5,000 rows``, ``3.1/9.8 MB``, ``42 lines``."""

    def render(self, task: Task) -> Text:
        """The task's counts."""
        unit = task.fields.get("unit", "rows")
        if task.total is None:
            text = _amount(task.completed, unit)
        elif unit == "bytes":
            text = f"{_amount(task.completed, unit)}/{_amount(task.total, unit)}"
        else:
            text = f"{task.completed:,.0f}/{task.total:,.0f}"
        return Text(text if unit == "bytes" else f"{text} {unit}", style="progress.download")


class FilesColumn(ProgressColumn):
    """Files done of the step's files, when the step counts files."""

    def render(self, task: Task) -> Text:
        """``2/5 files``, or nothing."""
        total = task.fields.get("total_files", 0)
        return Text(f"{task.fields.get('files', 0)}/{total} files" if total else "")


class RateColumn(ProgressColumn):
    """Units per second: ``12,000 rows/s``, ``4.2 MB/s``."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("")
        unit = task.fields.get("unit", "rows")
        return Text(f"{_amount(speed, unit)}{'' if unit == 'bytes' else ' ' + unit}/s", style="progress.data.speed")


def columns() -> tuple[ProgressColumn, ...]:
    """The columns of every bar: step, bar, counts, files, rate, elapsed time."""
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        CountColumn(),
        FilesColumn(),
        RateColumn(),
        TimeElapsedColumn(),
    )


class BarProgress:
    """The job Progress interface drawn on a Rich progress display: one task per step."""

    def __init__(self, bar: RichBar, labels: Mapping[str, str] | None = None) -> None:
        self._bar = bar
        self._labels = dict(labels or {})
        self._tasks: dict[str, TaskID] = {}

    def start(self, step: str, total: int | None = None, *, files: int = 0, unit: str = "rows") -> None:
        """Add the step's task (or reset it, when a step starts again)."""
        if step in self._tasks:
            self._bar.reset(self._tasks[step], total=total, unit=unit, files=0, total_files=files)
        else:
            label = self._labels.get(step, step)
            self._tasks[step] = self._bar.add_task(label, total=total, unit=unit, files=0, total_files=files)

    def advance(self, step: str, done: int = 0, *, files: int = 0) -> None:
        """Move the step's task on; a step never started gets a task without a total."""
        if step not in self._tasks:
            self.start(step)
        task_id = self._tasks[step]
        task = self._bar.tasks[task_id]
        self._bar.update(task_id, advance=done, files=task.fields.get("files", 0) + files)


@contextmanager
def progress_bar(labels: Mapping[str, str] | None = None, *, transient: bool = False) -> Iterator[BarProgress]:
    """A progress display on stderr for the duration of a job; drawn only when stderr is a terminal.

    Args:
        labels: the text shown for each step name (the step name itself otherwise).
        transient: remove the bars at the end (when a summary line follows on stderr).
    """
    console = Console(stderr=True)
    # No bar in logs and pipes: the summary says it all.
    bar = RichBar(*columns(), console=console, disable=not console.is_terminal, transient=transient)
    with bar:
        yield BarProgress(bar, labels)


def phase_lines(prefix: str) -> Phases:
    """A Progress that prints each phase as one ``<prefix>: <phase>`` line on stderr (benchmarks)."""
    return Phases(lambda line: print(f"{prefix}: {line}", file=sys.stderr))
