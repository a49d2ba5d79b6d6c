"""Batch work claimed by leases a wave at a time (docs/batch.md "Running on several machines"), for the spark engine.

The python engine claims one unit, works it, and releases it. A Spark job works many units at once, so the spark
engine claims a wave of them (the same `batch_lease` rows, the same names), keeps every lease of the wave alive with
one heartbeat while the job runs, and releases them after. Units another run holds are tried again after the pass,
with the same patience as `learnagg.batch.claims.Claimer`: until nobody has given a unit up for two lease lengths.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from learnagg.adapters.store.batch_leases import Lease, acquire, new_owner, release, renewing
from learnagg.app import App
from learnagg.batch.claims import ClaimStats

log = logging.getLogger("learnagg.batch")
T = TypeVar("T")


@dataclass
class WaveClaimer(Generic[T]):
    """Runs ``work`` once per wave of at most ``size`` units whose leases this run obtained."""

    app: App
    name: Callable[[T], str]
    lease_seconds: float
    size: int

    def run(self, units: Sequence[T], work: Callable[[list[tuple[T, Lease]], ClaimStats], None]) -> ClaimStats:
        """Claim units into waves and work each wave; ``work`` counts the units whose lease it lost."""
        stats = ClaimStats()
        owner = new_owner()
        lease_ms = int(self.lease_seconds * 1000)
        pending = list(units)
        patience = 2 * self.lease_seconds
        deadline = time.monotonic() + patience
        while pending:
            busy: list[T] = []
            wave: list[tuple[T, Lease]] = []
            for unit in pending:
                name = self.name(unit)
                if not acquire(self.app.store, name, owner, self.app.clock(), lease_ms):
                    busy.append(unit)
                    continue
                wave.append((unit, Lease(self.app.store, self.app.clock, name, owner, lease_ms)))
                if len(wave) >= self.size:
                    self._work(wave, work, stats)
                    wave = []
            if wave:
                self._work(wave, work, stats)
            if len(busy) < len(pending):
                deadline = time.monotonic() + patience
            pending = busy
            if pending and time.monotonic() >= deadline:
                stats.held = len(pending)
                break
            if pending:
                time.sleep(min(1.0, self.lease_seconds / 4))
        return stats

    def _work(
        self,
        wave: list[tuple[T, Lease]],
        work: Callable[[list[tuple[T, Lease]], ClaimStats], None],
        stats: ClaimStats,
    ) -> None:
        def beat() -> None:
            for _, lease in wave:
                if not lease.lost:
                    lease.beat()

        try:
            with renewing(self.lease_seconds / 3, beat, f"a wave of {len(wave)}"):
                work(wave, stats)
        finally:
            for _, lease in wave:
                try:
                    release(self.app.store, lease.name, lease.owner)
                except Exception:  # the lease expires on its own
                    log.warning("could not release lease %s", lease.name, exc_info=True)
