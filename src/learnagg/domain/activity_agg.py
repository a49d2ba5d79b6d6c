"""Per-batch course metrics of the `activity_agg` table (docs/api.md "activity_agg"): pure rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from learnagg.domain.numbers import round2

COURSE = "Course"
ENROLLED = "enrolledCount"
COMPLETED = "completedCount"
PERCENTAGE = "completionPercentage"
COUNT_METRICS = frozenset({ENROLLED, COMPLETED})
CONTEXT_PREFIX = "cb:"


def context_id(batch_id: str) -> str:
    """The `activity_agg.context_id` of a course batch: ``cb:<batchId>``, as in `user_activity_agg`."""
    return CONTEXT_PREFIX + batch_id


def batch_of(context: str) -> str:
    """The batch id of a context id (the context id itself when it has no ``cb:`` prefix)."""
    return context[len(CONTEXT_PREFIX) :] if context.startswith(CONTEXT_PREFIX) else context


def batch_metrics(enrolled: int, completed: int) -> dict[str, float]:
    """The stored map of one batch: active enrolments, completed ones and ``round2(completed*100/enrolled)``."""
    percentage = round2(completed * 100.0 / enrolled) if enrolled else 0.0
    return {ENROLLED: float(enrolled), COMPLETED: float(completed), PERCENTAGE: percentage}


def stamps_for(
    new: Mapping[str, float], old: Mapping[str, Any], old_stamps: Mapping[str, Any], now: int
) -> dict[str, int]:
    """``agg_last_updated`` after a recount: a metric keeps its time while its value is unchanged, else ``now``."""
    stamps: dict[str, int] = {}
    for key, value in new.items():
        kept = old_stamps.get(key)
        unchanged = key in old and old[key] == value and isinstance(kept, int) and not isinstance(kept, bool)
        stamps[key] = kept if unchanged else now  # type: ignore[assignment]
    return stamps


def metric_entries(agg: Mapping[str, Any], stamps: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The answer's metrics, sorted by name: counts as integers, the percentage as a double."""
    entries: list[dict[str, Any]] = []
    for key in sorted(agg):
        value = agg[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = int(value) if key in COUNT_METRICS else float(value)
        stamp = stamps.get(key)
        entries.append({"metric": key, "value": value, "lastUpdatedOn": stamp if isinstance(stamp, int) else None})
    return entries
