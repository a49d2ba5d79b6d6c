"""`learnagg serve` (the HTTP service, with the stream jobs in embedded mode) and `learnagg token`."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Annotated

import typer

from learnagg import bootstrap
from learnagg.adapters.metrics import share_between_processes
from learnagg.domain.identity import PLATFORM_ADMIN
from learnagg.entrypoints.cli.common import open_app
from learnagg.streams.loop import LoopService
from learnagg.streams.supervisor import JobSupervisor

log = logging.getLogger("learnagg.serve")

ROLE_ALIASES = {"admin": PLATFORM_ADMIN}


def _start_jobs(app: bootstrap.App) -> JobSupervisor:
    """Every stream job and the periodic exhaust runner (embedded mode), each in a supervised thread: a loop that
    dies is logged and restarted with backoff (worker.retry_delay doubling up to worker.retry_max_delay)."""
    from learnagg.adapters.objectstore import open_store
    from learnagg.batch.exhaust_runner import ExhaustService

    factories: dict[str, Callable[[], LoopService]] = {
        name: partial(bootstrap.build_worker, app, [name], own_process=False) for name in bootstrap.job_names()
    }
    # docs/batch.md#exhaust-reports: pending exhaust requests, every exhaust.poll_interval_seconds.
    factories["exhaust-runner"] = lambda: ExhaustService(app, open_store(app.settings.blob_url))
    ws = app.settings.worker
    supervisor = JobSupervisor(factories, restart_delay=ws.retry_delay, restart_max_delay=ws.retry_max_delay)
    supervisor.start()
    return supervisor


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="HTTP worker processes.")] = 1,
    no_jobs: Annotated[
        bool,
        typer.Option(
            "--no-jobs",
            help="Do not run the stream jobs in this process (run 'learnagg worker' separately); "
            "LEARNAGG_API__RUN_JOBS=false does the same.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); in embedded mode also run every stream job; stops on SIGTERM."""
    import uvicorn

    from learnagg.entrypoints.api.app import create_app

    if workers > 1:  # job metrics of this process and HTTP metrics of every worker, summed on /metrics
        share_between_processes()
    with open_app() as app:
        jobs = None if no_jobs or not app.settings.api.run_jobs else _start_jobs(app)

        def _stop_jobs(_signum: int, _frame: FrameType | None) -> None:
            if jobs is not None:
                jobs.stop()

        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler installed
        # before it started: this one, so the job threads also finish their batch and the exit status is 0.
        signal.signal(signal.SIGTERM, _stop_jobs)
        signal.signal(signal.SIGINT, _stop_jobs)
        if jobs is not None:
            log.info("running jobs in this process: %s", ", ".join(jobs.names))
        # Records of uvicorn go through the logging set up for every command (log.format, log.level).
        level = app.settings.log.level.lower()
        try:
            if workers == 1:
                uvicorn.run(create_app(app, jobs), host=host, port=port, log_config=None, log_level=level)
            else:
                # Each worker process builds its own app from the same LEARNAGG_* settings.
                uvicorn.run(
                    "learnagg.entrypoints.api.app:from_environment",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    log_config=None,
                    log_level=level,
                )
        finally:
            if jobs is not None:
                jobs.stop()
                jobs.join(timeout=30)


def token(
    user_id: Annotated[str, typer.Argument(help="The user the token is for.")],
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Role carried by the token (repeatable); 'admin' means PLATFORM_ADMIN."),
    ] = None,
) -> None:
    """Print a signed token for local use (embedded mode: the service's own HS256 secret)."""
    from learnagg.adapters.tokens import token_keys

    roles = [ROLE_ALIASES.get(r, r) for r in role or []]
    with open_app() as app:
        print(token_keys(app.settings.auth, app.store, app.clock()).mint(user_id, app.clock(), roles))


def register(app: typer.Typer) -> None:
    """Add the commands to the top-level app."""
    app.command()(serve)
    app.command()(token)
