"""The bus matrix of the job tests: each runs on the embedded log with one and with eight partitions, and on Redis.

A job test (a test of one of ``JOB_MODULES`` using the ``settings`` or ``app`` fixture) runs once per variant;
its id names the variant: ``[sqlite-p1]``, ``[sqlite-p8]``, ``[postgres-redis]``… ``p1`` is a database made by the
schema alone (one partition per topic, as an upgraded database), ``p8`` one where `learnagg init` stored eight
partitions for new topics (the default), ``redis`` the Redis Streams bus with eight partitions (docs/scale-out.md).

By default every job test runs on ``DEFAULT_VARIANTS`` (P=1 on SQLite, P=8 on PostgreSQL, and Redis Streams with a
PostgreSQL store: every bus and both backends, which keeps the suite's time); ``LEARNAGG_TEST_BUSES=full`` runs
``ALL_VARIANTS`` (each bus on each backend), and a list of ids (``LEARNAGG_TEST_BUSES=sqlite-p8,postgres-p8``) runs
those. Other tests of this folder keep the plain ``[sqlite]``/``[postgres]`` fixtures.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.bench.pgserver import PostgresServer
from learnagg.bench.redisserver import RedisServer
from learnagg.settings import BusSettings, Settings

PARTITIONS = 8  # the partitions of the p8 and redis variants (the `bus.partitions` default)

# (database backend, bus) pairs.
ALL_VARIANTS = [(backend, bus) for bus in ("p1", "p8", "redis") for backend in ("sqlite", "postgres")]
DEFAULT_VARIANTS = [("sqlite", "p1"), ("postgres", "p8"), ("postgres", "redis")]


def _chosen(names: str) -> list[tuple[str, str]]:
    """The variants named by ``LEARNAGG_TEST_BUSES``: ``full``, or ids such as ``sqlite-p1,postgres-redis``."""
    if not names:
        return DEFAULT_VARIANTS
    if names == "full":
        return ALL_VARIANTS
    by_id = {f"{backend}-{bus}": (backend, bus) for backend, bus in ALL_VARIANTS}
    unknown = [n for n in names.split(",") if n.strip() not in by_id]
    if unknown:
        raise pytest.UsageError(f"LEARNAGG_TEST_BUSES: unknown variant {unknown[0]!r}; known: full, {', '.join(by_id)}")
    return [by_id[n.strip()] for n in names.split(",")]


VARIANTS = _chosen(os.environ.get("LEARNAGG_TEST_BUSES", ""))

# The modules whose tests run over the matrix (the stream jobs' behaviour).
JOB_MODULES = {
    "test_activity_properties",
    "test_activity_updater",
    "test_assessment_golden",
    "test_assessment_properties",
    "test_assessment_rules",
    "test_certificate_flow",
    "test_certificate_preprocessor",
    "test_hostile_events_property",
    "test_job_metrics",
    "test_poison_events",
    "test_retry_policy",
}

_redis_dbs = itertools.cycle(range(1, 16))


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the job tests over ``VARIANTS`` (first in the id, before the test's own parameters)."""
    module = metafunc.module.__name__.rpartition(".")[2]
    if module not in JOB_MODULES or "bus" not in metafunc.fixturenames:
        return
    ids = [f"{backend}-{bus}" for backend, bus in VARIANTS]
    matrix = pytest.mark.parametrize(("database_url", "bus"), VARIANTS, ids=ids, indirect=["database_url"])
    metafunc.definition.add_marker(matrix, append=False)


@pytest.fixture
def bus(request: pytest.FixtureRequest) -> str:
    """The bus variant: ``p1``, ``p8`` or ``redis`` (``p1`` outside the job tests)."""
    return str(getattr(request, "param", "p1"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each job test copies the file."""
    path = tmp_path_factory.mktemp("template") / "learnagg.db"
    store = Store(f"sqlite:///{path}")
    schema.upgrade(store)
    store.dispose()
    assert not path.with_name("learnagg.db-wal").exists()  # the file alone is the whole database
    return path


@pytest.fixture(scope="session")
def pg_jobs_database(pg_server: PostgresServer, pg_template: str) -> str:
    """One migrated PostgreSQL database the job tests share, emptied before each (much cheaper than a copy)."""
    return pg_server.create_database("learnagg_jobs", template=pg_template)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database holding nothing, on each backend.

    Job tests get a copy of a migrated SQLite file, or the shared PostgreSQL database emptied (every other session
    on it ended, every table truncated, every sequence restarted); other tests a fresh database (tests/conftest.py).
    """
    if _module(request) not in JOB_MODULES:
        return str(request.getfixturevalue("database_url"))
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "learnagg.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_jobs_database")
    _empty(request.getfixturevalue("pg_server"), make_url(url).database or "")
    return url


def _empty(server: PostgresServer, name: str) -> None:
    """End every other session on a PostgreSQL database, truncate its tables (but the schema version), restart its
    sequences."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.conninfo(name), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        kept = [sql.Identifier(t) for t in tables if t != "alembic_version"]
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(kept)))
        for (sequence,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'").fetchall():
            conn.execute(sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(sequence)))


@pytest.fixture
def settings(database_url: str, bus: str, request: pytest.FixtureRequest) -> Settings:
    """Settings on the test database and the variant's bus (partitions stored as `learnagg init` does)."""
    if bus == "p1":
        return Settings(database_url=database_url)
    store = Store(database_url)
    with store.write() as conn:
        DatabaseLog(store.dialect).store_default_partitions(conn, PARTITIONS)
    store.dispose()
    bus_url = ""
    if bus == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        bus_url = server.url(next(_redis_dbs))
        import redis

        with redis.Redis.from_url(bus_url) as client:
            client.flushdb()
    return Settings(database_url=database_url, bus_url=bus_url, bus=BusSettings(partitions=PARTITIONS))


def _module(request: pytest.FixtureRequest) -> str:
    return str(request.module.__name__.rpartition(".")[2])
