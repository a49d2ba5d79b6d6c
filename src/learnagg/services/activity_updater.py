"""The activity aggregate updater (SPEC §4.3): progress events → consumption, completion counts, enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from learnagg.services.jobs import BatchResult, Incoming

ACTIVITY_AGGREGATE_UPDATER = "ActivityAggregateUpdater"
COUNTERS: dict[str, str] = {}


def parse_progress_event(raw: object) -> Any:
    """Placeholder until the job is built."""
    return raw


class ActivityUpdater:
    """Placeholder until the job is built."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def handle(self, conn: Connection, batch: Sequence[Incoming[Any]]) -> BatchResult:
        """Placeholder: handles nothing."""
        return BatchResult()
