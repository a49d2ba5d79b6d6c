"""The App record: everything a use case, job or command needs, built once by `bootstrap.build`."""

from __future__ import annotations

from dataclasses import dataclass, field

from learnagg.adapters.bus.log import EventLog
from learnagg.adapters.cache import GroupCache, NoCache
from learnagg.adapters.metrics import Metrics
from learnagg.adapters.store.store import Store
from learnagg.domain.clock import Clock, system_clock
from learnagg.domain.topics import Topics
from learnagg.settings import Settings


@dataclass
class App:
    """Everything a command needs, built once from the settings."""

    settings: Settings
    store: Store
    log: EventLog
    topics: Topics
    clock: Clock = field(default=system_clock)
    cache: GroupCache = field(default_factory=NoCache)
    metrics: Metrics = field(default_factory=Metrics)  # this App's Prometheus registry (docs/operations.md)

    def close(self) -> None:
        """Release database connections (and the bus's, when it holds its own)."""
        close_bus = getattr(self.log, "close", None)
        if close_bus is not None:
            close_bus()
        self.store.dispose()
