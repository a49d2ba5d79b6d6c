"""Shared fixtures: every store test body runs on SQLite and on a private PostgreSQL server."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

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

# The spark engine in tests: one local session on two cores, tiny slices and waves so that every job has several
# tasks.
SPARK: dict[str, Any] = {
    "master": "local[2]",
    "conf": {
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.sql.adaptive.enabled": "false",
    },
    "slice_learners": 2,
    "wave_partitions": 3,
}


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
def spark() -> Iterator[Any]:
    """One Spark session (``SPARK``) shared by every test of the run; the engine finds and reuses it."""
    from learnagg.batch.spark.session import spark_session

    session = spark_session(Settings(spark=SPARK))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=["python", "spark"])
def engine(request: pytest.FixtureRequest, settings: Settings) -> str:
    """The batch engine a test runs on (docs/spark.md). The spark engine runs on PostgreSQL only: its SQLite cases
    are not collected (see ``pytest_collection_modifyitems``); it uses the shared session."""
    if request.param == "spark":
        request.getfixturevalue("spark")
        settings.spark = Settings(spark=SPARK).spark
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the spark engine on SQLite (the engine refuses it in one line, tested in tests/spark)."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (drop if params.get("engine") == "spark" and params.get("database_url") == "sqlite" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
