"""The Rich adapter of the job progress interface: a task per step, counts, files and rate; hidden off a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from learnagg.entrypoints.cli.progress import BarProgress, columns, phase_lines, progress_bar


def drawn(report, labels=None) -> str:
    out = io.StringIO()
    bar = Progress(*columns(), console=Console(file=out, force_terminal=True, width=160, color_system=None))
    with bar:
        report(BarProgress(bar, labels))
    return out.getvalue()


def test_a_step_shows_rows_files_and_rate():
    def report(progress: BarProgress) -> None:
        progress.start("archive", 200, files=2)
        progress.advance("archive", 100, files=1)
        progress.advance("archive", 100, files=1)

    text = drawn(report)
    assert "archive" in text and "200/200 rows" in text and "2/2 files" in text and "rows/s" in text


def test_one_task_per_step_with_its_label_and_unit():
    def report(progress: BarProgress) -> None:
        progress.start("agg-to-aggregates", 3)
        progress.advance("agg-to-aggregates", 3)
        progress.start("backfill", 7, unit="learners")
        progress.advance("backfill", 3)
        progress.advance("backfill", 4)

    text = drawn(report, {"agg-to-aggregates": "legacy agg ints"})
    assert "legacy agg ints" in text and "3/3 rows" in text
    assert "backfill" in text and "7/7 learners" in text and "learners/s" in text
    assert "files" not in text  # steps without files show no file count


def test_bytes_and_unknown_totals():
    def report(progress: BarProgress) -> None:
        progress.start("user_activity_agg", 2_000_000, unit="bytes")
        progress.advance("user_activity_agg", 1_000_000)
        progress.advance("user_activity_agg", 1_000_000)
        progress.advance("report", 42)  # never started: a task without a total

    text = drawn(report)
    assert "2.0 MB/2.0 MB" in text and "B/s" in text  # a byte rate, not "bytes/s"
    assert "bytes/s" not in text
    assert "42 rows" in text


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]):
    with progress_bar({"archive": "archive"}) as progress:
        progress.start("archive", 10, files=1)
        progress.advance("archive", 10, files=1)
    assert capsys.readouterr() == ("", "")


def test_benchmark_phases_are_lines_on_stderr(capsys: pytest.CaptureFixture[str]):
    phases = phase_lines("bench")
    phases.start("archive run (timed)")
    phases.advance("archive run (timed)", 100)
    assert capsys.readouterr() == ("", "bench: archive run (timed)\n")
