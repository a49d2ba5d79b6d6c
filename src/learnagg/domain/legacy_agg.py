"""Pure rules of the score-metric migration (docs/batch.md#migrations-and-imports): legacy `agg` ints into `aggregates`,
backfill changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from learnagg.domain.numbers import finite_double, is_number


def _as_map(value: object) -> dict[str, object]:
    # A null (or malformed, non-object) map column counts as {} (docs/reference/data-model.md#d2).
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class MapUpdate:
    """The whole `aggregates` and `agg_last_updated` maps to write back, and how many keys changed."""

    aggregates: dict[str, object]
    agg_last_updated: dict[str, object]
    keys_added: int
    keys_updated: int = 0


def missing_legacy_values(agg: object, aggregates: object) -> dict[str, float]:
    """The `agg` values, as doubles, whose keys are not yet in `aggregates` (docs/batch.md#migrations-and-imports).

    Args:
        agg: The legacy integer map; null counts as empty.
        aggregates: The current double map; null counts as empty. A key present with any value is kept.

    Returns:
        The keys to add, in `agg` order. Non-numeric or non-finite legacy values are skipped.
    """
    current = _as_map(aggregates)
    missing: dict[str, float] = {}
    for key, value in _as_map(agg).items():
        if key in current:  # existing doubles are never overwritten
            continue
        double = finite_double(value)  # not a finite number: the entry is left alone
        if double is not None:
            missing[key] = double
    return missing


def copy_legacy_agg(agg: object, aggregates: object, agg_last_updated: object, now: int) -> MapUpdate | None:
    """docs/batch.md#migrations-and-imports for one row: the maps after copying legacy ints, or None when nothing is
    missing.

    Each key k of `agg` that is not in `aggregates` gets ``aggregates[k] = double(agg[k])``;
    ``agg_last_updated[k] = now`` is set only where absent. Every other key of both maps is kept, and `agg`
    itself is never modified.

    Args:
        agg: The legacy integer map.
        aggregates: The current double map.
        agg_last_updated: The current timestamp map.
        now: Epoch ms written to absent `agg_last_updated` keys.

    Returns:
        The whole new maps, or None when the row needs no change.
    """
    missing = missing_legacy_values(agg, aggregates)
    if not missing:
        return None
    timestamps = _as_map(agg_last_updated)
    for key in missing:
        timestamps.setdefault(key, now)
    return MapUpdate({**_as_map(aggregates), **missing}, timestamps, keys_added=len(missing))


def _same_double(current: object, value: float) -> bool:
    # A stored 5 and a computed 5.0 are the same metric: rewriting would only change the JSON spelling.
    return is_number(current) and float(current) == value  # type: ignore[arg-type]


def backfill_update(
    aggregates: object,
    agg_last_updated: object,
    agg_details: Sequence[str] | None,
    *,
    metrics: Mapping[str, float],
    details: Sequence[str],
    now: int,
    legacy_agg: object = None,
) -> MapUpdate | None:
    """What S5 changes on one row during the backfill (docs/batch.md#migrations-and-imports), or None when the row
    already holds it.

    The comparison is made with the row as step 1 leaves it: `legacy_agg` keys missing from `aggregates` count
    as present, so a dry run reports the counts a real run would.

    Args:
        aggregates: The stored double map (null when the row or the value is missing).
        agg_last_updated: The stored timestamp map.
        agg_details: The stored attempt history.
        metrics: ``score:c``, ``max_score:c`` and ``attempts_count:c`` computed by S4.
        details: The `agg_details` list S5 writes.
        now: Epoch ms for every written metric key (S5).
        legacy_agg: The row's legacy `agg` map, overlaid as step 1 would.

    Returns:
        The whole new maps (other keys kept) with added/updated key counts, or None when nothing differs.
    """
    current = {**missing_legacy_values(legacy_agg, aggregates), **_as_map(aggregates)}
    added = sum(1 for key in metrics if key not in current)
    updated = sum(1 for key, value in metrics.items() if key in current and not _same_double(current[key], value))
    if not added and not updated and list(agg_details or ()) == list(details):
        return None
    timestamps = {**_as_map(agg_last_updated), **dict.fromkeys(metrics, now)}
    return MapUpdate({**_as_map(aggregates), **metrics}, timestamps, keys_added=added, keys_updated=updated)


@dataclass
class StepSummary:
    """What one step examined and changed; a dry run reports the counts a real run would."""

    step: str
    rows_examined: int = 0
    rows_changed: int = 0
    rows_created: int = 0
    keys_added: int = 0
    keys_updated: int = 0

    def add(self, other: StepSummary) -> None:
        """Add the counts of a finished chunk."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, int]:
        """The counts, for ``--json``."""
        return {name: getattr(self, name) for name in _COUNTS}


_COUNTS = ("rows_examined", "rows_changed", "rows_created", "keys_added", "keys_updated")


@dataclass
class MigrationSummary:
    """The outcome of one migration command."""

    command: str
    dry_run: bool
    batch_ids: list[str] | None
    steps: list[StepSummary] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A machine-readable summary."""
        return {
            "command": self.command,
            "dry_run": self.dry_run,
            "batch_ids": self.batch_ids,
            "steps": {s.step: s.to_json() for s in self.steps},
            "seconds": round(self.seconds, 3),
        }
