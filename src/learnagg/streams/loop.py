"""A loop with one unit of work per turn, a stop flag and an idle wait: the base of every long-running service."""

from __future__ import annotations

import threading


class LoopService:
    """A loop with ``run_once`` (one unit of work, returns how much it did), ``start`` and ``stop``."""

    poll_interval: float = 0.5

    def __init__(self) -> None:
        """Create the stop flag."""
        self._stop = threading.Event()

    def run_once(self) -> int:
        """Do one unit of work; return the number of items handled (0 means idle)."""
        raise NotImplementedError

    def start(self, loops: int | None = None, *, until_idle: bool = False) -> int:
        """Run ``run_once`` until stopped, ``loops`` times, or (``until_idle``) until it finds no work.

        Returns:
            The total number of items handled.
        """
        total = 0
        done = 0
        while not self._stop.is_set() and (loops is None or done < loops):
            handled = self.run_once()
            total += handled
            done += 1
            if handled == 0:
                if until_idle:
                    break
                self._stop.wait(self.poll_interval)
        return total

    def stop(self) -> None:
        """Ask the loop to finish after the current unit of work."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called."""
        return self._stop.is_set()
