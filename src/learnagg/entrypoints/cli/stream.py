"""`learnagg init`, `publish` and `worker`: the schema, the event log and the stream jobs."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.entrypoints.cli.common import echo_json, open_app, open_input

PUBLISH_BATCH = 5000  # lines per transaction: bounded memory, few commits


def init() -> None:
    """Create or upgrade the database schema (LEARNAGG_DATABASE_URL); running it twice is harmless."""
    with open_app(require_schema=False) as app:
        schema.upgrade(app.store)
        print(f"schema at revision {schema.current_revision(app.store)} ({app.store.backend})")


def publish(
    topic: Annotated[str, typer.Argument(help="Topic: assess, progress, certificate, or a full topic name.")],
    file: Annotated[str, typer.Argument(help="JSON lines file, or - for standard input.")],
) -> None:
    """Append events (one JSON document per line) to a topic; bad events are left for the job to reject."""
    with open_app() as app, open_input(file) as fh:
        name = app.topics.resolve(topic)
        progress = name == app.topics.progress
        total = 0
        pending: list[tuple[str | None, str]] = []

        def flush() -> None:
            with app.store.write() as conn:
                app.log.append(conn, name, pending, app.clock())
            pending.clear()

        for line in fh:
            text = line.strip()
            if not text:
                continue
            pending.append((_progress_key(text) if progress else None, text))
            total += 1
            if len(pending) >= PUBLISH_BATCH:
                flush()
        if pending:
            flush()
        print(f"published {total} event(s) to {name}", file=sys.stderr)


def _progress_key(text: str) -> str | None:
    """Progress events are keyed by userId (SPEC §3.2); an unreadable event simply has no key."""
    try:
        edata = orjson.loads(text).get("edata") or {}
        user = edata.get("userId")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return user if isinstance(user, str) else None


def worker(
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help=f"Job to run (repeatable); default all: {', '.join(bootstrap.job_names())}."),
    ] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Drain the topics, then exit.")] = False,
) -> None:
    """Run the stream jobs: until SIGTERM, or with --until-idle until every topic is drained."""
    with open_app() as app:
        # With --until-idle a batch that keeps failing (worker.max_retries) ends the run with exit 1; without it
        # the worker retries with backoff for as long as it runs.
        w = bootstrap.build_worker(app, job)
        w.install_signal_handlers()
        handled = w.start(until_idle=until_idle)
        jobs = {c.spec.name: c.reference_counters() for c in w.consumers}
        echo_json({"handled": handled, "jobs": jobs})


def register(app: typer.Typer) -> None:
    """Add the commands to the top-level app."""
    app.command()(init)
    app.command()(publish)
    app.command()(worker)
