"""The bus matrix of the job tests: each runs on the embedded log with one and with eight partitions, and on Redis.

A job test (a test of one of ``JOB_MODULES`` using the ``settings`` or ``app`` fixture) runs once per variant;
its id names the variant: ``[sqlite-p1]``, ``[sqlite-p8]``, ``[postgres-redis]``… ``p1`` is a database made by the
schema alone (one partition per topic, as an upgraded database), ``p8`` one where `learnagg init` stored eight
partitions for new topics (the default), ``redis`` the Redis Streams bus with eight partitions (docs/scale-out.md).

By default every job test runs on ``DEFAULT_VARIANTS`` (P=1 on both backends, P=8 and Redis once each, which keeps
the suite's time); ``LEARNAGG_TEST_BUSES=full`` runs ``ALL_VARIANTS`` (each bus on each backend). Other tests of this
folder keep the plain ``[sqlite]``/``[postgres]`` fixtures.
"""

from __future__ import annotations

import itertools
import os

import pytest
from sqlalchemy.engine import make_url

from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store.store import Store
from learnagg.bench.pgserver import PostgresServer
from learnagg.bench.redisserver import RedisServer
from learnagg.settings import BusSettings, Settings

PARTITIONS = 8  # the partitions of the p8 and redis variants (the `bus.partitions` default)

# (database backend, bus) pairs.
ALL_VARIANTS = [(backend, bus) for bus in ("p1", "p8", "redis") for backend in ("sqlite", "postgres")]
DEFAULT_VARIANTS = [("sqlite", "p1"), ("postgres", "p1"), ("sqlite", "p8"), ("postgres", "redis")]
VARIANTS = ALL_VARIANTS if os.environ.get("LEARNAGG_TEST_BUSES") == "full" else DEFAULT_VARIANTS

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


@pytest.fixture
def settings(database_url: str, bus: str, request: pytest.FixtureRequest) -> Settings:
    """Settings on the test database and the variant's bus (partitions stored as `learnagg init` does).

    A job test's PostgreSQL database is dropped after it: the matrix makes hundreds of them.
    """
    if request.module.__name__.rpartition(".")[2] in JOB_MODULES:
        _drop_afterwards(request, database_url)
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


def _drop_afterwards(request: pytest.FixtureRequest, database_url: str) -> None:
    """Drop the test's PostgreSQL database once the test (and its app) is done."""
    if not database_url.startswith("postgresql"):
        return
    import psycopg
    from psycopg import sql

    server: PostgresServer = request.getfixturevalue("pg_server")
    name = make_url(database_url).database

    def drop() -> None:
        with psycopg.connect(server.conninfo(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    request.addfinalizer(drop)
