"""Time per phase of a stream job's batches, summed over a run: the per-phase table of `learnagg bench ingest`.

Off unless a run is being recorded (`recording`): a `lap` call then costs one global read and one comparison, so
the consumer loop and the handlers can mark their phases unconditionally. Laps are wall-clock (`time.perf_counter`):
the time since the previous lap of the same thread is added to the named phase.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

# The phases of one batch, in the order a batch goes through them (the bench prints them in this order).
FETCH = "fetch"
DECODE = "decode"
VALIDATE = "validate/score"
HISTORY = "history read"
AGGREGATE = "aggregate"
UPSERT = "upsert"
OUTBOX = "offsets/outbox"
COMMIT = "commit"
ORDER = (FETCH, DECODE, VALIDATE, HISTORY, AGGREGATE, UPSERT, OUTBOX, COMMIT)


class PhaseTimes:
    """The seconds recorded per phase, and the thread being recorded."""

    def __init__(self) -> None:
        """Start empty, recording the calling thread."""
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.thread = threading.get_ident()
        self.last = time.perf_counter()


_active: PhaseTimes | None = None


def lap(phase: str | None) -> None:
    """Add the time since the previous lap to ``phase`` (None: only start a new lap); a no-op when not recording."""
    times = _active
    if times is None:
        return
    if times.thread != threading.get_ident():  # a thread of its own (an HTTP server's) is not part of the run
        return
    now = time.perf_counter()
    if phase is not None:
        times.seconds[phase] += now - times.last
    times.last = now


@contextmanager
def recording() -> Iterator[PhaseTimes]:
    """Record the laps of the calling thread until the block ends.

    Yields:
        The times, complete once the block has ended.
    """
    global _active
    times = PhaseTimes()
    _active = times
    try:
        yield times
    finally:
        _active = None
