"""Batch work split between concurrent runs by leases (docs/batch.md "Running on several machines").

Each unit (an archival partition, an archive to delete) is claimed before any upload or deletion. A unit another
run holds is tried again after the pass, until it is done (by anyone) or nobody has given up a unit for two lease
lengths: a run that crashed leaves its claims to expire and a surviving run takes them over, while a healthy run
that keeps its claims is left to finish them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from learnagg.adapters.store.batch_leases import Lease, LeaseLost, held, new_owner
from learnagg.app import App

log = logging.getLogger("learnagg.batch")
T = TypeVar("T")


@dataclass
class ClaimStats:
    """Units left to other runs, and units whose lease was taken over while this run worked on them."""

    held: int = 0
    lost: int = 0


@dataclass
class Claimer(Generic[T]):
    """Runs ``work`` once for each unit whose lease this run obtains."""

    app: App
    name: Callable[[T], str]
    lease_seconds: float
    owner: str = ""

    def __post_init__(self) -> None:
        """A fresh owner identity per run unless given."""
        self.owner = self.owner or new_owner()

    def run(self, units: Sequence[T], work: Callable[[T, Lease], None]) -> ClaimStats:
        """Claim and work each unit; wait for units held elsewhere as described in the module docstring."""
        stats = ClaimStats()

        def one_pass(pending: list[T]) -> list[T]:
            busy: list[T] = []
            for unit in pending:
                with held(self.app.store, self.app.clock, self.name(unit), self.owner, self.lease_seconds) as lease:
                    if lease is None:
                        busy.append(unit)
                        continue
                    try:
                        work(unit, lease)
                    except LeaseLost:
                        log.warning("lost the lease of %s: another run finishes it", self.name(unit))
                        stats.lost += 1
            return busy

        stats.held = in_passes(units, one_pass, self.lease_seconds)
        return stats


def in_passes(units: Sequence[T], one_pass: Callable[[list[T]], list[T]], lease_seconds: float) -> int:
    """Offer the units pass after pass until every one is done; return how many were left to other runs.

    ``one_pass`` works what it can claim and returns the units held by another run. They are offered again after
    a pause, until nobody has given one up for two lease lengths: a crashed run's claims expire within that time,
    while a healthy run that keeps its claims is left to finish them. Every way of claiming batch work (one unit
    at a time, forked workers, waves for Spark) shares this patience.
    """
    pending = list(units)
    patience = 2 * lease_seconds
    deadline = time.monotonic() + patience
    while pending:
        busy = one_pass(pending)
        if len(busy) < len(pending):
            deadline = time.monotonic() + patience
        pending = busy
        if not pending:
            break
        if time.monotonic() >= deadline:
            return len(pending)
        time.sleep(min(1.0, lease_seconds / 4))
    return 0
