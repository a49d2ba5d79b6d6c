"""An injectable clock (docs/reference/data-model.md#c2): "now" is read once per unit of work."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def system_clock() -> int:
    """Epoch milliseconds from the system clock."""
    return time.time_ns() // 1_000_000


def fixed_clock(now_ms: int) -> Clock:
    """A clock that always reads ``now_ms`` (tests, replays)."""
    return lambda: now_ms
