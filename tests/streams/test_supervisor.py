"""Supervised job loops (docs/operations.md "Health"): a loop that dies is logged and restarted with backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from learnagg.streams.loop import LoopService
from learnagg.streams.supervisor import JobSupervisor


class Flaky(LoopService):
    """A loop whose first ``failures`` units of work raise ``error``, then idles."""

    poll_interval = 0.01

    def __init__(self, state: dict[str, int], error: BaseException | None) -> None:
        super().__init__()
        self.state = state
        self.error = error

    def run_once(self) -> int:
        self.state["runs"] += 1
        if self.error is not None and self.state["runs"] <= self.state["failures"]:
            raise self.error
        return 0


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.mark.parametrize("error", [RuntimeError("a bug in the loop"), SystemExit(3)], ids=["exception", "exit"])
def test_a_loop_that_dies_is_logged_and_restarted(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    state = {"runs": 0, "failures": 2}
    supervisor = JobSupervisor({"job": lambda: Flaky(state, error)}, restart_delay=0.01, restart_max_delay=0.05)
    supervisor.start()
    try:
        _until(lambda: supervisor.restarts("job") == 2 and supervisor.is_up("job"))
    finally:
        supervisor.stop()
        supervisor.join(5)
    died = [r for r in caplog.records if r.getMessage().startswith("job loop died")]
    assert len(died) == 2 and all(r.exc_info and r.exc_info[1] is error for r in died)
    assert supervisor.status() == {"job": "stopped"}


def test_a_job_that_cannot_be_built_is_down_with_the_reason_and_retried() -> None:
    attempts: list[int] = []
    release = threading.Event()

    def build() -> LoopService:
        attempts.append(1)
        if not release.is_set():
            raise ConnectionError("broker unreachable")
        return Flaky({"runs": 0, "failures": 0}, None)

    supervisor = JobSupervisor({"job": build}, restart_delay=0.01, restart_max_delay=0.02)
    supervisor.start()
    try:
        _until(lambda: len(attempts) >= 3)
        assert supervisor.status()["job"].startswith("down: ConnectionError: broker unreachable; restarting in ")
        release.set()
        _until(lambda: supervisor.is_up("job"))
    finally:
        supervisor.stop()
        supervisor.join(5)


def test_a_loop_that_returns_on_its_own_is_restarted() -> None:
    class Once(LoopService):
        def run_once(self) -> int:
            self.stop()  # ends the loop although nobody asked the supervisor to stop
            return 1

    supervisor = JobSupervisor({"job": Once}, restart_delay=0.01, restart_max_delay=0.02)
    supervisor.start()
    try:
        _until(lambda: supervisor.restarts("job") >= 2)
    finally:
        supervisor.stop()
        supervisor.join(5)
    assert supervisor.status() == {"job": "stopped"}


def test_stop_ends_every_loop_and_nothing_restarts() -> None:
    states = {name: {"runs": 0, "failures": 0} for name in ("a", "b")}
    supervisor = JobSupervisor({n: (lambda s=s: Flaky(s, None)) for n, s in states.items()}, restart_delay=0.01)
    supervisor.start()
    _until(lambda: supervisor.status() == {"a": "ok", "b": "ok"})
    supervisor.stop()
    supervisor.join(5)
    assert supervisor.status() == {"a": "stopped", "b": "stopped"}
    assert supervisor.restarts("a") == supervisor.restarts("b") == 0
