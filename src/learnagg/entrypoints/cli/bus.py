"""`learnagg bus …`: operations on the event bus's topics (docs/scale-out.md)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from learnagg import bootstrap
from learnagg.adapters.bus import repartition as repartitioning
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.entrypoints.cli.common import open_app
from learnagg.errors import ConfigurationError, InputError
from learnagg.streams.ownership import wall_ms

app = typer.Typer(help="The event bus: topics and their partitions.", no_args_is_help=True)


@app.command("repartition")
def repartition(
    topic: Annotated[str, typer.Argument(help="Topic: assess, progress, certificate, a suffix or a full name.")],
    partitions: Annotated[int, typer.Option("--partitions", min=1, max=1024, help="The new partition count.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change (or why not); change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Change the count even with unread events, outbox rows or live workers (events in flight may be "
            "read out of order, or never when their partition goes away).",
        ),
    ] = False,
) -> None:
    """Change a topic's partition count: refused unless every job reading it has lag 0, the outbox holds nothing for
    it and no live worker runs it (stop the workers and the APIs first, start them after)."""
    with open_app() as la:
        name = la.topics.resolve(topic)
        readers = [spec.name for spec in bootstrap.JOBS.values() if la.topics.name(spec.input_suffix) == name]
        log_ = la.log
        if not isinstance(log_, DatabaseLog):  # the embedded log and Redis Streams keep their counts in the store
            raise ConfigurationError(f"this bus cannot be repartitioned: {type(log_).__name__}")
        with la.store.write() as conn:
            plan = repartitioning.plan(conn, log_, name, partitions, readers, wall_ms())
            if plan.refusals and not force:
                raise InputError(f"refused: {'; '.join(plan.refusals)} ({plan.topic}; wait, or use --force)")
            if dry_run or plan.current == plan.wanted:
                print(("would change " if dry_run and plan.current != plan.wanted else "") + plan.describe())
                return
            repartitioning.apply(conn, log_, plan)
        if plan.refusals:
            print(f"forced past: {'; '.join(plan.refusals)}", file=sys.stderr)
        print(plan.describe())
