"""`learnagg bench …`: measured figures (benchmarks, not timed tests)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Benchmarks; record their figures in BENCHMARKS.md.", no_args_is_help=True)
