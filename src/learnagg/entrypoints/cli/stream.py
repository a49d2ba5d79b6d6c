"""`learnagg init`, `publish` and `worker`: the schema, the event log and the stream jobs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer

from learnagg import bootstrap
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store import schema
from learnagg.entrypoints.cli.common import echo_json, open_app
from learnagg.errors import InputError
from learnagg.streams.consumer import Worker
from learnagg.streams.metrics import watch_lag

log = logging.getLogger("learnagg.worker")

PUBLISH_BATCH = 5000  # lines per insert statement: bounded memory; the whole file is still one transaction
_BOM = b"\xef\xbb\xbf"
_JSON_BLANKS = " \t\r\n"


def init() -> None:
    """Create or upgrade the database schema (LEARNAGG_DATABASE_URL); running it twice is harmless."""
    with open_app(require_schema=False) as app:
        schema.upgrade(app.store)
        print(f"schema at revision {schema.current_revision(app.store)} ({app.store.backend})")
        wanted = app.settings.bus.partitions
        with app.store.write() as conn:
            stored = DatabaseLog(app.store.dialect).store_default_partitions(conn, wanted)
        if stored != wanted:
            print(
                f"bus.partitions is {wanted} but new topics keep the stored {stored} partition(s)",
                file=sys.stderr,
            )
        else:
            print(f"new topics get {stored} partition(s)")


def publish(
    topic: Annotated[str, typer.Argument(help="Topic: assess, progress, certificate, or a full topic name.")],
    file: Annotated[str, typer.Argument(help="JSON lines file, or - for standard input.")],
) -> None:
    """Append events (one JSON document per line) to a topic, all or nothing; bad events are left for the job.

    Lines are split on newlines only (a carriage return inside a line is JSON whitespace); a UTF-8 byte-order mark
    is skipped. A line that is not UTF-8 or holds a NUL character publishes nothing and names FILE:LINE.
    """
    with open_app() as app, _open_binary(file) as fh:
        name = app.topics.resolve(topic)
        progress = name == app.topics.progress
        total = 0
        pending: list[tuple[str | None, str]] = []
        label = "stdin" if file == "-" else file
        # One transaction for the whole file: a bad line rolls back what was appended before it.
        with app.store.write() as conn:
            for number, raw in enumerate(fh, start=1):
                text = _decode_line(raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw, label, number)
                if not text:
                    continue
                pending.append((_progress_key(text) if progress else None, text))
                total += 1
                if len(pending) >= PUBLISH_BATCH:
                    app.log.append(conn, name, pending, app.clock())
                    pending.clear()
            app.log.append(conn, name, pending, app.clock())
        print(f"published {total} event(s) to {name}", file=sys.stderr)


@contextmanager
def _open_binary(path: str) -> Iterator[BinaryIO]:
    """The input as bytes, so that lines end at newline characters only: a file, or standard input for ``-``."""
    if path == "-":
        yield sys.stdin.buffer
        return
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    with p.open("rb") as fh:
        yield fh


def _decode_line(raw: bytes, label: str, number: int) -> str:
    """One line as text without surrounding JSON whitespace; refuses what the log cannot store."""
    try:
        text = raw.decode("utf-8").strip(_JSON_BLANKS)
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}:{number}: not valid UTF-8 (byte {exc.start + 1} of the line)") from exc
    if "\x00" in text:
        raise InputError(f"{label}:{number}: NUL character (write it as \\u0000 inside a JSON string)")
    return text


def _progress_key(text: str) -> str | None:
    """Progress events are keyed by userId (docs/reference/events.md#e2); an unreadable event simply has no key."""
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
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="Serve Prometheus metrics on this TCP port (/metrics)."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port listens on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    partitions: Annotated[
        str | None,
        typer.Option("--partitions", help="Only these partitions of every job's topic, e.g. 0,3 (default: a share)."),
    ] = None,
) -> None:
    """Run the stream jobs: until SIGTERM, or with --until-idle until every topic is drained."""
    pinned = _partition_list(partitions)
    with open_app() as app:
        # With --until-idle a batch that keeps failing (worker.max_retries) ends the run with exit 1; without it
        # the worker retries with backoff for as long as it runs.
        w = bootstrap.build_worker(app, job, partitions=pinned)
        w.install_signal_handlers()
        log.info("worker running %s%s", ", ".join(c.spec.name for c in w.consumers), " until idle" * until_idle)
        with _metrics_server(app, w, metrics_host, metrics_port):
            handled = w.start(until_idle=until_idle)
        log.info("worker stopped after %d event(s)", handled)
        jobs = {c.spec.name: c.reference_counters() for c in w.consumers}
        echo_json({"handled": handled, "jobs": jobs})


def _partition_list(text: str | None) -> list[int] | None:
    """``--partitions 0,3`` as numbers; refuses anything else."""
    if text is None:
        return None
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(n < 0 for n in numbers):
        raise InputError(f"--partitions {text!r}: expected partition numbers separated by commas, e.g. 0,3")
    return sorted(set(numbers))


@contextmanager
def _metrics_server(app: bootstrap.App, w: Worker, host: str, port: int | None) -> Iterator[None]:
    """While the block runs, serve the worker's metrics (and its jobs' lag) over HTTP when a port is given."""
    if port is None:
        yield
        return
    from prometheus_client import start_http_server

    watch_lag(app, [c.spec for c in w.consumers])
    try:
        server, thread = start_http_server(port, addr=host, registry=app.metrics.exposed())
    except OSError as exc:
        raise InputError(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    print(f"metrics on http://{host}:{port}/metrics", file=sys.stderr)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def register(app: typer.Typer) -> None:
    """Add the commands to the top-level app."""
    app.command()(init)
    app.command()(publish)
    app.command()(worker)
