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
        pending = list(units)
        patience = 2 * self.lease_seconds
        deadline = time.monotonic() + patience
        while pending:
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
            if len(busy) < len(pending):
                deadline = time.monotonic() + patience
            pending = busy
            if pending and time.monotonic() >= deadline:
                stats.held = len(pending)
                break
            if pending:
                time.sleep(min(1.0, self.lease_seconds / 4))
        return stats
