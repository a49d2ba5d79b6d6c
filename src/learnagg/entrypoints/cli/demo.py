"""`learnagg demo`: the main job end to end on the embedded store."""

from __future__ import annotations

import typer


def demo() -> None:
    """Generate a small course with learners and attempts, run the aggregator, print best scores."""


def register(app: typer.Typer) -> None:
    """Add the command to the top-level app."""
    app.command()(demo)
