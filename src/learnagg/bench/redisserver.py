"""Throwaway private Redis servers for tests: a free loopback port, a temporary folder, no persistence.

:class:`RedisServer` is one server; :class:`RedisCluster` is three cluster-enabled servers joined into one cluster
(all slots, no replicas) with ``redis-cli --cluster create``.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RedisCluster", "RedisServer", "RedisUnavailable"]

_START_TIMEOUT_S = 20.0
_PR_SET_PDEATHSIG = 1


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or did not start."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # The server must not outlive the test run, even when the runner is killed with SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class RedisServer:
    """``redis-server`` in the foreground as a child process; ``url()`` once started, ``stop()`` when done.

    ``options`` are extra ``redis-server`` arguments (``--cluster-enabled yes`` …).
    """

    def __init__(self, options: Sequence[str] = ()) -> None:
        """Nothing runs until :meth:`start`."""
        self.options = list(options)
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server not found: install the Debian package 'redis-server'")
        self.folder = Path(tempfile.mkdtemp(prefix="learnagg-redis-"))
        self.port = _free_port()
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", *self.options]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.stop()
                raise RedisUnavailable(f"redis-server did not start: {err.strip()[:300]}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        return self.ask(b"PING").startswith(b"+PONG")

    def ask(self, command: bytes) -> bytes:
        """One inline command's raw answer (empty when the server does not answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(command + b"\r\n")
                return sock.recv(65536)
        except OSError:
            return b""

    def url(self, db: int = 0) -> str:
        """``redis://127.0.0.1:<port>/<db>``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the server and remove its folder (harmless to repeat)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class RedisCluster:
    """Three cluster-enabled ``redis-server`` processes holding every slot (no replicas); ``url()`` once started.

    Each node has a free loopback port and a free cluster-bus port (``cluster-port``), its own temporary folder
    (``nodes.conf``), no persistence; :meth:`stop` stops them all.
    """

    def __init__(self, nodes: int = 3) -> None:
        """Nothing runs until :meth:`start`."""
        self.nodes = [RedisServer() for _ in range(nodes)]

    def start(self) -> RedisCluster:
        """Start the nodes, join them with ``redis-cli --cluster create`` and wait for ``cluster_state:ok``."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisUnavailable("redis-cli not found: install the Debian package 'redis-tools'")
        atexit.register(self.stop)
        try:
            for node in self.nodes:
                node.options = ["--cluster-enabled", "yes", "--cluster-port", str(_free_port())]
                node.options += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
            done = subprocess.run(create, capture_output=True, timeout=_START_TIMEOUT_S, check=False)
            if done.returncode != 0:
                raise RedisUnavailable(f"redis-cli --cluster create failed: {done.stdout.decode()[-300:]}")
            deadline = time.monotonic() + _START_TIMEOUT_S
            while not all(b"cluster_state:ok" in node.ask(b"CLUSTER INFO") for node in self.nodes):
                if time.monotonic() > deadline:
                    raise RedisUnavailable("the Redis cluster did not reach cluster_state:ok")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port>,127.0.0.1:<port>,…`` (the bus URL of a cluster)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def stop(self) -> None:
        """Stop every node and remove their folders (harmless to repeat)."""
        for node in self.nodes:
            node.stop()
