"""How a long job reports how far it got: one interface for archival, deletion, migrations, imports and benchmarks.

A job runs in steps (``archive``, ``backfill``, a benchmark phase, …). It announces each step once with
:meth:`Progress.start` (its total when known, and how many files it covers, if any), then reports increments with
:meth:`Progress.advance`. A phase with nothing to count is a ``start`` alone. Jobs never print: the command line draws
the reports (a Rich bar on a terminal, phase lines for benchmarks), and a job run without a reporter gets
:class:`NoProgress`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """What a long job reports: each step's totals once, then increments."""

    def start(self, step: str, total: int | None = None, *, files: int = 0, unit: str = "rows") -> None:
        """Step ``step`` begins: ``total`` units to do (None when unknown) over ``files`` files (0: no files)."""

    def advance(self, step: str, done: int = 0, *, files: int = 0) -> None:
        """``done`` more units and ``files`` more files of step ``step`` are finished."""


class NoProgress:
    """A Progress that reports nothing."""

    def start(self, step: str, total: int | None = None, *, files: int = 0, unit: str = "rows") -> None:
        """Ignore the step."""

    def advance(self, step: str, done: int = 0, *, files: int = 0) -> None:
        """Ignore the increment."""


class Phases:
    """A Progress for phases only: ``start`` passes the step, a short line, to ``say``; increments are ignored."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def start(self, step: str, total: int | None = None, *, files: int = 0, unit: str = "rows") -> None:
        """Tell the phase."""
        self._say(step)

    def advance(self, step: str, done: int = 0, *, files: int = 0) -> None:
        """Ignore the increment."""
