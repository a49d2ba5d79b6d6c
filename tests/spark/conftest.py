"""The spark engine's tests: PostgreSQL only (the engine reads the store over JDBC), one local Spark session on two
cores for the whole run, tiny slices so that every job has several tasks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from learnagg.bench.pgserver import PostgresServer
from learnagg.settings import Settings

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
_numbers = itertools.count()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session (local[2]) shared by every test of the run; the engine finds and reuses it."""
    from learnagg.batch.spark.session import spark_session

    session = spark_session(Settings(spark=SPARK))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def database_url(pg_server: PostgresServer, pg_template: str) -> str:
    """A fresh, migrated PostgreSQL database (no SQLite here: the engine refuses it)."""
    return pg_server.create_database(f"spark{next(_numbers)}", template=pg_template)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings of the test database and the shared Spark session's master (tests that run the engine in this
    process use the fixture ``spark``)."""
    return Settings(database_url=database_url, spark=SPARK)
