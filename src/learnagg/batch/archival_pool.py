"""Archival units (partitions, archives) worked by several processes at once, each under its own lease
(docs/batch.md "Running on several machines").

The parent hands out units one at a time to `archival.workers` forked processes. A child claims its unit with the
same expiring lease as a sequential run (`batch_leases.held`), works it, and sends back what it did; a unit held
by another run comes back as busy and is offered again after the pass (`claims.in_passes`). Each child holds at
most one unit's rows in memory, so memory grows with the number of workers, not with the data.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from learnagg.adapters.store.batch_leases import Lease, LeaseLost, held, new_owner
from learnagg.app import App
from learnagg.batch.claims import ClaimStats, in_passes

log = logging.getLogger("learnagg.batch")
T = TypeVar("T")
R = TypeVar("R")

BUSY, DONE, LOST = "busy", "done", "lost"
_PR_SET_PDEATHSIG = 1


def worker_count(setting: int, units: int) -> int:
    """Processes to use: the setting (0: one per core), never more than the units."""
    wanted = setting or os.cpu_count() or 1
    return max(1, min(wanted, units))


@dataclass
class _Job(Generic[T, R]):
    """What every forked child works with (inherited through fork, never pickled)."""

    app: App
    units: Sequence[T]
    name: Callable[[T], str]
    lease_seconds: float
    work: Callable[[T, Lease], R]
    owner: str  # the run's identity; each child claims as ``<owner>:<its pid>``


_JOB: _Job[Any, Any] | None = None
_CHILD_PID: int | None = None
_OWNER = ""


def _die_with_parent() -> None:
    """A child stops when its run is killed (Linux), as the run's own work would; its leases then expire."""
    with suppress(OSError, AttributeError):  # not Linux: the child ends once its current unit is done
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child(index: int) -> tuple[str, Any]:
    """Claim and work one unit in a child process; (status, the work's result or None)."""
    global _CHILD_PID, _OWNER
    job = _JOB
    if job is None:  # pragma: no cover - only reached if the pool was not forked from `run_pool`
        raise RuntimeError("archival worker started without a job")
    if os.getpid() != _CHILD_PID:
        # The parent's pooled connections belong to the parent: this process opens its own.
        job.app.store.engine.dispose(close=False)
        _CHILD_PID, _OWNER = os.getpid(), f"{job.owner}:{os.getpid()}"
    unit = job.units[index]
    with held(job.app.store, job.app.clock, job.name(unit), _OWNER, job.lease_seconds) as lease:
        if lease is None:
            return BUSY, None
        try:
            return DONE, job.work(unit, lease)
        except LeaseLost:
            log.warning("lost the lease of %s: another run finishes it", job.name(unit))
            return LOST, None


def run_pool(
    app: App,
    units: Sequence[T],
    *,
    name: Callable[[T], str],
    lease_seconds: float,
    workers: int,
    work: Callable[[T, Lease], R],
    done: Callable[[T, R], None],
) -> ClaimStats:
    """Work every unit in ``workers`` forked processes; ``done`` receives each result in this process.

    ``work`` runs in a child (its effects on this process's objects are lost: it returns what it did);
    ``done`` runs here, in completion order.
    """
    global _JOB
    stats = ClaimStats()
    _JOB = _Job(app, units, name, lease_seconds, work, new_owner())
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_die_with_parent) as pool:

            def one_pass(pending: list[int]) -> list[int]:
                busy: list[int] = []
                running: dict[Future[tuple[str, Any]], int] = {pool.submit(_child, i): i for i in pending}
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    if any(f.exception() is not None for f in finished):
                        pool.shutdown(wait=True, cancel_futures=True)  # stop, as a sequential run would
                    for future in finished:
                        index = running.pop(future)
                        status, result = future.result()
                        if status == BUSY:
                            busy.append(index)
                        elif status == LOST:
                            stats.lost += 1
                        else:
                            done(units[index], result)
                return sorted(busy)

            stats.held = in_passes(range(len(units)), one_pass, lease_seconds)
    finally:
        _JOB = None
    return stats
