"""The scratch databases of the ingest benchmark: one for the aggregator and one for each reference."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from learnagg.adapters.store.store import normalise_url
from learnagg.bench.common import private_postgres
from learnagg.errors import ConfigurationError, InputError

_DATABASES = ("aggregator", "bare_write", "parse_write")


@contextmanager
def _sqlite_databases() -> Iterator[tuple[str, ...]]:
    with tempfile.TemporaryDirectory(prefix="learnagg-bench-") as folder:
        yield tuple(f"sqlite:///{folder}/{name}.db" for name in _DATABASES)


@contextmanager
def _private_postgres() -> Iterator[tuple[str, ...]]:
    with private_postgres() as server:
        yield tuple(server.create_database(f"bench_{name}") for name in _DATABASES)


@contextmanager
def _scratch_postgres(server_url: str) -> Iterator[tuple[str, ...]]:
    """The benchmark's scratch databases, created (and dropped afterwards) on the server of ``server_url``."""
    try:
        url = make_url(normalise_url(server_url))
    except ArgumentError as exc:
        raise InputError(f"invalid database URL {server_url!r}") from exc
    if url.get_backend_name() != "postgresql":
        raise InputError("--database-url must be a postgresql:// URL")
    suffix = f"{os.getpid()}_{int(time.time())}"
    names = [f"learnagg_bench_{name}_{suffix}" for name in _DATABASES]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        try:
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    created.append(name)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigurationError(f"cannot create scratch databases on the --database-url server: {reason}") from exc
        yield tuple(url.set(database=name).render_as_string(False) for name in names)
    finally:
        if created:
            with admin.connect() as conn:
                for name in created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def databases(backend: str, database_url: str | None) -> AbstractContextManager[tuple[str, ...]]:
    """The URLs of the aggregator's, the bare write's and the parse + write's fresh databases, in that order.

    SQLite files in a temporary folder; PostgreSQL databases on a private server, or scratch databases on the
    server of ``database_url`` (dropped afterwards).
    """
    if backend == "sqlite":
        return _sqlite_databases()
    if database_url:
        return _scratch_postgres(database_url)
    return _private_postgres()
