"""The store: an engine chosen from the URL, its dialect, and read/write transactions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from learnagg.adapters.store.dialects import Dialect, dialect_for
from learnagg.errors import ConfigurationError

_WRITE = "learnagg_write"


def _json_dumps(value: Any) -> str:
    # orjson renders doubles as the shortest round-trip text with a fraction (docs/reference/data-model.md#c4) and is
    # fast.
    return orjson.dumps(value).decode()


def normalise_url(url: str) -> str:
    """Map user-facing URLs onto SQLAlchemy drivers: ``postgresql://`` and ``postgres://`` use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_private_sqlite_file(url: URL) -> None:
    """Create a missing SQLite database file with mode 0600 before SQLite opens it (docs/threat-model.md).

    SQLite would create it with the umask's mode (usually 0644), readable by every local user; its -wal and -shm
    files copy the database file's mode. Existing files, in-memory databases and URI file names are left alone.
    """
    name = url.database or ""
    if not name or name == ":memory:" or name.startswith("file:") or url.query.get("uri"):
        return
    path = Path(name)
    if not path.parent.is_dir() or path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # Created concurrently by another process, or not creatable: SQLite itself opens it (or reports why not).
        return
    os.close(fd)  # an empty file is a valid, empty SQLite database


def _configure_sqlite(engine: Engine, url: URL) -> None:
    @event.listens_for(engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        create_private_sqlite_file(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start instead of the driver.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer. synchronous=NORMAL is durable across process crashes
        # (a commit survives SIGKILL); only an OS crash may lose the last commits.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        # Wait for the single write lock instead of failing at once when another process holds it.
        cur.execute("PRAGMA busy_timeout=30000")
        # A 64 MiB page cache per connection (the default is 2 MiB): a 1,000-member group's rows span about 12 MiB
        # of pages, read 40 % faster from the cache than from the file (docs/api.md#group-aggregates).
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
        # upgrades later can fail with SQLITE_BUSY instead of waiting (ARCHITECTURE "Known pitfalls").
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """One database: the engine, the dialect class for its backend and transaction helpers."""

    def __init__(self, url: str) -> None:
        """Create the engine for ``url`` (no connection is made yet)."""
        try:
            sa_url = make_url(normalise_url(url))
        except ArgumentError as exc:
            raise ConfigurationError(f"invalid database URL {url!r}") from exc
        backend = sa_url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigurationError(
                f"unsupported database URL scheme {sa_url.drivername!r}: use sqlite:///FILE or postgresql://…"
            )
        options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if backend == "sqlite":
            options["connect_args"] = {"timeout": 30}
        else:
            # Bounded pool: workers are few; a pre-ping hides server restarts from long-running workers.
            options.update(pool_size=5, max_overflow=5, pool_pre_ping=True)
            # No server-side prepared statements: after five runs PostgreSQL may switch the batch lookups
            # (`IN` lists of hundreds of ids) to a generic plan that scans a whole course (measured: -25 %).
            options["connect_args"] = {"prepare_threshold": None}
        try:
            self.engine: Engine = create_engine(sa_url, **options)
        except NoSuchModuleError as exc:
            raise ConfigurationError(f"cannot load the driver for {sa_url.drivername}: {exc}") from exc
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"LEARNAGG_DATABASE_URL ({backend}) needs the package {exc.name}: pip install 'learnagg[postgres]'"
            ) from exc
        if backend == "sqlite":
            _configure_sqlite(self.engine, sa_url)
        self.backend = backend
        self.dialect: Dialect = dialect_for(backend)
        self.url = url

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        with self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on both backends)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
