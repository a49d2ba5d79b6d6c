"""Shared fixtures: every store test body runs on SQLite and on a private PostgreSQL server."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest

from learnagg import bootstrap, logs
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.bench.pgserver import PostgresServer
from learnagg.bench.redisserver import RedisCluster, RedisServer
from learnagg.settings import Settings
from tests.support import TestClock

T = 1_700_000_000_000  # "now" in tests (SPEC C2 examples write it as T)
_db_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _cli_logging_undone() -> Iterator[None]:
    """A command run in-process (``main([...])``) sets up logging for the process: undo it after each test."""
    level = logging.getLogger().level
    yield
    logs.unconfigure()
    logging.getLogger().setLevel(level)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the whole run (fast, non-durable settings)."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private Redis server for the whole run (no persistence)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One private 3-node Redis Cluster for the whole run (every slot, no replicas, no persistence)."""
    cluster = RedisCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    """A database migrated once with Alembic; each test copies it (CREATE DATABASE … TEMPLATE)."""
    url = pg_server.create_database("learnagg_template")
    store = Store(url)
    schema.upgrade(store)
    store.dispose()
    return "learnagg_template"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/learnagg.db"
        store = Store(url)
        schema.upgrade(store)
        store.dispose()
        return url
    server: PostgresServer = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_template")
    return server.create_database(f"t{next(_db_numbers)}", template=template)


@pytest.fixture
def clock() -> TestClock:
    """A settable clock reading T."""
    return TestClock(T)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database; everything else default."""
    return Settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings, clock: TestClock) -> Iterator[bootstrap.App]:
    """The application built on the test database with the test clock."""
    application = bootstrap.build(settings, clock=clock)
    yield application
    application.close()
