"""What every benchmark shares: argument checks, scratch databases, the machine's figures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from learnagg.adapters.store.store import Store
from learnagg.errors import ConfigurationError, InputError

if TYPE_CHECKING:
    from learnagg.bench.pgserver import PostgresServer

BACKENDS = ("sqlite", "postgres")


def check_backend(backend: str) -> None:
    """Refuse a backend no benchmark runs on (InputError, one line)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")


def check_range(option: str, value: float, low: float, high: float) -> None:
    """Refuse ``value`` outside [low, high], naming the command-line option."""
    if not low <= value <= high:
        raise InputError(f"{option} must be between {low} and {high}, not {value}")


@contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server with its durability defaults, stopped when the block ends."""
    from learnagg.bench.pg_binaries import PostgresUnavailable
    from learnagg.bench.pgserver import PostgresServer

    try:
        server = PostgresServer(durable=True)
        server.start()
    except (PostgresUnavailable, RuntimeError) as exc:
        raise ConfigurationError(f"cannot start a private PostgreSQL server: {str(exc).splitlines()[0]}") from exc
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def scratch_database(backend: str, folder: str | Path, name: str) -> Iterator[str]:
    """The URL of a fresh database: an SQLite file in ``folder``, or database ``name`` on a private server."""
    if backend == "sqlite":
        yield f"sqlite:///{folder}/{name}.db"
        return
    with private_postgres() as server:
        yield server.create_database(name)


def postgres_version(store: Store) -> str | None:
    """The server version on PostgreSQL; None on SQLite."""
    if store.backend != "postgresql":
        return None
    with store.read() as conn:
        return str(conn.execute(text("SHOW server_version")).scalar_one())


def memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Total memory in GiB from /proc/meminfo (None where there is no such file)."""
    with suppress(OSError, ValueError):
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return None
