"""Throwaway private PostgreSQL servers for tests and benchmarks."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bindir"]

_SUPERUSER = "postgres"
_OS_USER = "postgres"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0
_PORT_ATTEMPTS = 5
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


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries or the ``postgres`` OS user are not available."""


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<N>`` folders (numeric, highest last)."""
    parts = re.findall(r"\d+", path.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def _is_server_bindir(path: Path) -> bool:
    """Return whether ``path`` holds executable ``initdb`` and ``postgres`` binaries."""
    return all(os.access(path / name, os.X_OK) and (path / name).is_file() for name in ("initdb", "postgres"))


def _candidate_bindirs() -> Iterator[Path]:
    """Yield folders that may hold the PostgreSQL server binaries, best first."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent))
    yield from reversed(debian)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                yield Path(out)
    for name in ("postgres", "initdb"):
        found = shutil.which(name)
        if found:
            yield Path(found).resolve().parent


def find_pg_bindir() -> Path | None:
    """Find the folder with the PostgreSQL server binaries (``initdb``, ``postgres``).

    Looks at ``/usr/lib/postgresql/<N>/bin`` (highest major version first), then at
    ``pg_config --bindir``, then at ``PATH``.

    Returns:
        The folder, or ``None`` when no server binaries are installed.
    """
    for candidate in _candidate_bindirs():
        if _is_server_bindir(candidate):
            return candidate
    return None


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary folder, on a free loopback port.

    When the current process runs as root, ``initdb`` and ``postgres`` run as the ``postgres``
    OS user (created by the Debian ``postgresql`` package) and the folder is owned by it.
    The database superuser is ``postgres`` and authentication is ``trust``.

    Example:
        >>> with PostgresServer() as server:  # doctest: +SKIP
        ...     url = server.create_database("app")
    """

    def __init__(self, base_dir: Path | None = None, *, durable: bool = False) -> None:
        """Prepare a server; nothing runs until :meth:`start`.

        Args:
            base_dir: Folder in which the temporary folder is created (default: the system temp
                folder). When running as root it must be traversable by the ``postgres`` user.
            durable: Keep PostgreSQL's durability defaults (for benchmarks). When ``False``,
                ``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off for speed.

        Raises:
            PostgresUnavailable: If the server binaries are missing, or the process runs as root
                and there is no ``postgres`` OS user.
        """
        bindir = find_pg_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries not found: run scripts/ensure-postgres.sh "
                "(or install the Debian package `postgresql`)"
            )
        self.bindir: Path = bindir
        self.base_dir = base_dir
        self.durable = durable
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam(_OS_USER)
            except KeyError:
                raise PostgresUnavailable(
                    "running as root but there is no `postgres` OS user: run scripts/ensure-postgres.sh "
                    "(or install the Debian package `postgresql`)"
                ) from None
        self.root: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    # -- properties -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1 only)."""
        if self._port is None or self._proc is None:
            raise RuntimeError("PostgresServer is not running")
        return self._port

    @property
    def pid(self) -> int:
        """The process id of the postmaster."""
        if self._proc is None:
            raise RuntimeError("PostgresServer is not running")
        return self._proc.pid

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self._require_root() / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's unix socket."""
        return self._require_root() / "sock"

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr of the postmaster)."""
        return self._require_root() / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether the postmaster process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- public API -------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster, start the server and wait until it accepts connections.

        Raises:
            RuntimeError: If the server is already running, ``initdb`` fails, or the server does
                not accept connections within 60 seconds (the message includes the log tail).
        """
        if self._proc is not None:
            raise RuntimeError("PostgresServer is already running")
        self._owner_pid = os.getpid()
        parent = str(self.base_dir) if self.base_dir is not None else None
        self.root = Path(tempfile.mkdtemp(prefix="learnagg-pg-", dir=parent))
        atexit.register(self.stop)
        try:
            self._chown(self.root)
            self._check_reachable(self.root)
            self._start_watchdog()
            self._initdb()
            self._write_config()
            self._launch()
        except BaseException:
            self.stop()
            raise

    def url(self, dbname: str = "postgres") -> str:
        """Return a SQLAlchemy URL for ``dbname`` on this server.

        Args:
            dbname: Database name.

        Returns:
            ``postgresql+psycopg://postgres@127.0.0.1:<port>/<dbname>``.
        """
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """Return a libpq connection string for ``dbname`` (for ``psycopg.connect``).

        Args:
            dbname: Database name.

        Returns:
            A ``key=value`` connection string.
        """
        return f"host=127.0.0.1 port={self.port} user={_SUPERUSER} dbname={dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database with ``CREATE DATABASE``.

        Args:
            name: Name of the new database.
            template: Optional template database to copy.

        Returns:
            The SQLAlchemy URL of the new database (see :meth:`url`).
        """
        import psycopg
        from psycopg import sql

        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(stmt)
        return self.url(name)

    def stop(self) -> None:
        """Shut the server down (fast shutdown) and remove the temporary folder.

        Safe to call several times; also runs at interpreter exit.
        """
        if os.getpid() != self._owner_pid:
            return  # a forked child: the server belongs to the parent
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            self._shutdown(proc)
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(OSError):
                if watchdog.stdin is not None:
                    watchdog.stdin.close()
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        self._port = None

    def __enter__(self) -> PostgresServer:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Short description with the port when running."""
        state = f"port={self._port}" if self.running else "stopped"
        return f"<PostgresServer {state} durable={self.durable}>"

    # -- internals --------------------------------------------------------------------------

    def _require_root(self) -> Path:
        if self.root is None:
            raise RuntimeError("PostgresServer is not started")
        return self.root

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _check_reachable(self, path: Path) -> None:
        """Fail clearly when the ``postgres`` OS user cannot traverse the folders above ``path``."""
        if self._run_as is None:
            return
        for folder in path.parents:
            st = folder.stat()
            if st.st_uid == self._run_as.pw_uid:
                bit = stat.S_IXUSR
            elif st.st_gid == self._run_as.pw_gid:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                raise RuntimeError(
                    f"the `{self._run_as.pw_name}` OS user cannot traverse {folder}: "
                    "pass a base_dir it can reach (the default system temp folder works)"
                )

    def _proc_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``subprocess`` that run a binary as the right OS user."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kwargs: dict[str, Any] = {"cwd": str(self._require_root()), "env": env}
        if self._run_as is not None:
            env.update(HOME=self._run_as.pw_dir, USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        return kwargs

    def _initdb(self) -> None:
        cmd = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, **self._proc_kwargs()
        )
        if result.returncode != 0:
            tail = "\n".join(result.stdout.decode(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{tail}")

    def _write_config(self) -> None:
        self._chown(self._mkdir(self.socket_dir))
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "'{}'".format(str(self.socket_dir).replace("'", "''")),
            "max_connections": "100",
            "shared_buffers": "'128MB'",
            "dynamic_shared_memory_type": "posix",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        lines = ["", "# learnagg.devtools.pgserver"] + [f"{k} = {v}" for k, v in settings.items()]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    @staticmethod
    def _mkdir(path: Path) -> Path:
        path.mkdir(mode=0o700)
        return path

    def _launch(self) -> None:
        """Start the postmaster on a free port, retrying when the port was taken meanwhile."""
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            with self.log_path.open("ab") as log:
                proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **self._proc_kwargs(),
                )
            self._proc, self._port = proc, port
            self._tell_watchdog(proc.pid)
            try:
                self._wait_ready(proc, port)
                return
            except _PortInUse:
                self._shutdown(proc)
                self._proc = None
                if attempt == _PORT_ATTEMPTS - 1:
                    raise RuntimeError(
                        f"PostgreSQL could not bind a free port after {_PORT_ATTEMPTS} attempts:\n{self._log_tail()}"
                    ) from None

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self._require_root())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _tell_watchdog(self, pid: int) -> None:
        if self._watchdog is not None and self._watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.write(f"{pid}\n".encode())
                self._watchdog.stdin.flush()

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> None:
        import psycopg

        deadline = time.monotonic() + _START_TIMEOUT_S
        conninfo = f"host=127.0.0.1 port={port} user={_SUPERUSER} dbname=postgres"
        while True:
            code = proc.poll()
            if code is not None:
                tail = self._log_tail()
                if _BIND_ERROR.search(tail):
                    raise _PortInUse
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
                    f"{_START_TIMEOUT_S:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _shutdown(self, proc: subprocess.Popen[bytes]) -> None:
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

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


class _PortInUse(Exception):
    """The chosen port was taken between picking it and the server binding it."""
