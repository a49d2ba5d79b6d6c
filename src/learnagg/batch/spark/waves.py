"""Batch work claimed by leases a wave at a time (docs/batch.md "Running on several machines"), for the spark engine.

The python engine claims one unit, works it, and releases it. A Spark job works many units at once, so the spark
engine claims a wave of them (the same `batch_lease` rows, the same names), keeps every lease of the wave alive with
one heartbeat while the job runs, and releases them after. Units another run holds are tried again after the pass
(`learnagg.batch.claims.in_passes`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from learnagg.adapters.store.batch_leases import Lease, acquire, new_owner, release, renewing
from learnagg.app import App
from learnagg.batch.claims import ClaimStats, in_passes

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

        def one_pass(pending: list[T]) -> list[T]:
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
            return busy

        stats.held = in_passes(units, one_pass, self.lease_seconds)
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
