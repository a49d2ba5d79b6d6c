"""Throwaway private PostgreSQL servers for tests and benchmarks."""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from learnagg.bench.pg_binaries import PostgresUnavailable, find_pg_bindir
from learnagg.bench.pg_process import (
    PortInUse,
    free_port,
    log_tail,
    shutdown,
    start_watchdog,
    tell_watchdog,
    wait_ready,
)

__all__ = ["PostgresServer"]

_SUPERUSER = "postgres"
_OS_USER = "postgres"
_PORT_ATTEMPTS = 5


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
            self._watchdog = start_watchdog(self._require_root())
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
            shutdown(proc)
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
        lines = ["", "# learnagg.bench.pgserver"] + [f"{k} = {v}" for k, v in settings.items()]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    @staticmethod
    def _mkdir(path: Path) -> Path:
        path.mkdir(mode=0o700)
        return path

    def _launch(self) -> None:
        """Start the postmaster on a free port, retrying when the port was taken meanwhile."""
        for attempt in range(_PORT_ATTEMPTS):
            port = free_port()
            with self.log_path.open("ab") as log:
                proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **self._proc_kwargs(),
                )
            self._proc, self._port = proc, port
            tell_watchdog(self._watchdog, proc.pid)
            try:
                wait_ready(proc, port, self.conninfo(), self.log_path)
                return
            except PortInUse:
                shutdown(proc)
                self._proc = None
                if attempt == _PORT_ATTEMPTS - 1:
                    raise RuntimeError(
                        f"PostgreSQL could not bind a free port after {_PORT_ATTEMPTS} attempts:\n"
                        f"{log_tail(self.log_path)}"
                    ) from None
