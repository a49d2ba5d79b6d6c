"""The processes around a throwaway PostgreSQL server: the cleanup watchdog, readiness, shutdown and the log tail."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
_BIND_ERROR = re.compile(r"could not (bind|create listen socket)|address already in use", re.IGNORECASE)

# Run in a separate process as the current user: reads the postmaster's pid from a pipe and
# waits until the parent's end closes (normal stop, or the parent dying, even by SIGKILL); then,
# if the cluster is still there, shuts the postmaster down and removes the folder.
_WATCHDOG = """
import os, shutil, signal, sys, time
root, pid = sys.argv[1], None
signal.signal(signal.SIGINT, signal.SIG_IGN)
for line in sys.stdin.buffer:
    if line.strip():
        pid = int(line)
lockfile = os.path.join(root, "data", "postmaster.pid")
def alive():
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return os.path.exists(lockfile)
if pid is not None and os.path.exists(lockfile):
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if not alive():
            break
        try:
            os.kill(pid, sig)
        except OSError:
            break
        deadline = time.monotonic() + wait
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
shutil.rmtree(root, ignore_errors=True)
"""


class PortInUse(Exception):
    """The chosen port was taken between picking it and the server binding it."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_watchdog(root: Path) -> subprocess.Popen[bytes]:
    """Start the watchdog that shuts the server in ``root`` down and removes the folder once its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def tell_watchdog(watchdog: subprocess.Popen[bytes] | None, pid: int) -> None:
    """Give the watchdog the postmaster's process id."""
    if watchdog is not None and watchdog.stdin is not None:
        with contextlib.suppress(OSError):
            watchdog.stdin.write(f"{pid}\n".encode())
            watchdog.stdin.flush()


def wait_ready(proc: subprocess.Popen[bytes], port: int, conninfo: str, log_path: Path) -> None:
    """Wait until the postmaster accepts connections on ``conninfo``.

    Raises:
        PortInUse: the server exited because another process took the port meanwhile.
        RuntimeError: the server exited, or did not accept connections within 60 seconds (with the log tail).
    """
    import psycopg

    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        code = proc.poll()
        if code is not None:
            tail = log_tail(log_path)
            if _BIND_ERROR.search(tail):
                raise PortInUse
            raise RuntimeError(f"PostgreSQL exited during startup (exit {code}):\n{tail}")
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"PostgreSQL did not accept connections on 127.0.0.1:{port} within "
                f"{_START_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)


def shutdown(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), escalating to immediate (SIGQUIT) and SIGKILL."""
    for sig, wait in (
        (signal.SIGINT, _STOP_TIMEOUT_S),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, 5.0),
    ):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def log_tail(log_path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of the server log, or a note that there is none."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"
