"""What every stream job shares: typed incoming messages, batch results and the job table entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Incoming(Generic[M]):
    """A decoded, validated message with what the failed topic needs to keep it unchanged."""

    raw_text: str
    raw: dict[str, Any]
    message: M
    seq: int = 0  # its position in the log (failed envelopes name it in `metadata.failed_id`)


@dataclass(slots=True)
class BatchResult:
    """What a handler reports back to the consumer loop for one batch."""

    failures: list[tuple[Incoming[Any], str]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    # Users whose `user_activity_agg` rows the batch wrote: their cached group aggregates are dropped after commit.
    changed_users: set[str] = field(default_factory=set)


class Handler(Protocol[M]):  # type: ignore[misc]
    """A job's batch handler: all its writes go through ``conn`` (the consumer loop's transaction)."""

    def handle(self, conn: Connection, batch: Sequence[Incoming[M]]) -> BatchResult:
        """Process the batch in log order; return failures (sent to the failed topic) and counters."""
        ...


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One row of the job table: which topic feeds which handler, and where failures go."""

    name: str
    input_suffix: str
    failed_suffix: str
    src: str
    parse: Callable[[object], Any]
    counter_names: dict[str, str]
    make_handler: Callable[..., Handler[Any]]
    # Skip an event whose `mid` the job already applied (docs/scale-out.md); off for a job that deduplicates
    # replays itself and counts them as the reference job does.
    skip_applied_mids: bool = True
