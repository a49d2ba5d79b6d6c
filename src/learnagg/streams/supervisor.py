"""Supervised job loops: one thread per job, a loop that dies is logged with its traceback and restarted with backoff.

A job loop (:class:`~learnagg.streams.loop.LoopService`) already survives what its work may raise: the consumer
isolates events that fail and retries a batch after a transient error. The supervisor is for everything else (a bug in
the loop itself, a failure while building it, an exception that is not an ``Exception``): it never lets a job end
unseen, and it tells readiness which jobs are up (docs/operations.md "Health").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from learnagg.logs import job_context
from learnagg.streams.loop import LoopService
from learnagg.streams.retry import backoff_delay, describe

log = logging.getLogger(__name__)

OK = "ok"


@dataclass(slots=True)
class _Job:
    """One supervised job: how to build its loop, the loop running now, and whether it is up."""

    name: str
    factory: Callable[[], LoopService]
    service: LoopService | None = None
    state: str = "starting"  # "ok" while the loop runs, otherwise why it does not
    restarts: int = 0
    thread: threading.Thread | None = field(default=None, repr=False)


class JobSupervisor:
    """Runs each job loop in a thread of its own and restarts it with backoff when it dies.

    ``restart_delay`` doubles after each death in a row up to ``restart_max_delay`` (with jitter); a loop that ran
    longer than ``restart_max_delay`` before dying starts the count again.
    """

    def __init__(
        self,
        jobs: Mapping[str, Callable[[], LoopService]],
        *,
        restart_delay: float = 2.0,
        restart_max_delay: float = 60.0,
    ) -> None:
        """Take one factory per job name; each (re)start of a job builds a fresh loop with it."""
        self._jobs = {name: _Job(name, factory) for name, factory in jobs.items()}
        self.restart_delay = restart_delay
        self.restart_max_delay = restart_max_delay
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """The supervised jobs, in the order given."""
        return list(self._jobs)

    def start(self) -> None:
        """Start one thread per job (daemon threads: :meth:`stop` and :meth:`join` end them cleanly)."""
        for job in self._jobs.values():
            job.thread = threading.Thread(target=self._supervise, args=(job,), name=f"job-{job.name}", daemon=True)
            job.thread.start()

    def stop(self) -> None:
        """Ask every loop to finish its current unit of work; no job is restarted after this."""
        with self._lock:
            self._stopping.set()
            services = [job.service for job in self._jobs.values() if job.service is not None]
        for service in services:
            service.stop()

    def join(self, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` seconds in all for the job threads to end."""
        deadline = time.monotonic() + timeout
        for job in self._jobs.values():
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def status(self) -> dict[str, str]:
        """``{job: "ok" | why it is not running}``: starting, restarting after an error, or stopped."""
        with self._lock:
            return {name: job.state for name, job in self._jobs.items()}

    def is_up(self, name: str) -> bool:
        """True while the job's loop runs."""
        return self.status().get(name) == OK

    def restarts(self, name: str) -> int:
        """How many times the job's loop has been restarted."""
        with self._lock:
            return self._jobs[name].restarts

    def _supervise(self, job: _Job) -> None:
        """The job thread: run the loop; when it ends while the supervisor still runs, log, wait and start again."""
        deaths = 0
        with job_context(job.name):
            while not self._stopping.is_set():
                started = time.monotonic()
                reason = self._run(job)
                if reason is None:
                    break
                deaths = 1 if time.monotonic() - started > self.restart_max_delay else deaths + 1
                delay = backoff_delay(deaths, self.restart_delay, self.restart_max_delay)
                with self._lock:
                    job.service = None
                    job.state = f"down: {reason}; restarting in {delay:.1f} s"
                log.warning("job loop down (%d in a row), restarting in %.1f s: %s", deaths, delay, reason)
                if self._stopping.wait(delay):
                    break
                with self._lock:
                    job.restarts += 1
            with self._lock:
                job.service = None
                job.state = "stopped"

    def _run(self, job: _Job) -> str | None:
        """Build and run the loop once; None when it ended because the supervisor stops, otherwise why it ended."""
        try:
            service = job.factory()
            with self._lock:
                if self._stopping.is_set():
                    return None
                job.service = service
                job.state = OK
            if job.restarts:
                log.info("job loop restarted (restart %d)", job.restarts)
            service.start()
        # A thread has no caller to hand an exception to: whatever ends the loop (even SystemExit from a library
        # or a BaseException of a driver) is logged here and the job is restarted, never lost silently.
        except BaseException as exc:
            log.error("job loop died: %s", describe(exc), exc_info=exc)
            return describe(exc)
        if self._stopping.is_set():
            return None
        log.error("job loop returned although the service was not stopped")
        return "the loop returned although the service was not stopped"
