"""The spark engine's tests: PostgreSQL only (the engine reads the store over JDBC), on the Spark session shared by
the whole run (`tests.conftest.spark`: local[2], tiny slices so that every job has several tasks)."""

from __future__ import annotations

import itertools

import pytest

from learnagg.bench.pgserver import PostgresServer
from learnagg.settings import Settings
from tests.conftest import SPARK

_numbers = itertools.count()


@pytest.fixture
def database_url(pg_server: PostgresServer, pg_template: str) -> str:
    """A fresh, migrated PostgreSQL database (no SQLite here: the engine refuses it)."""
    return pg_server.create_database(f"spark{next(_numbers)}", template=pg_template)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings of the test database and the shared Spark session's master (tests that run the engine in this
    process use the fixture ``spark``)."""
    return Settings(database_url=database_url, spark=SPARK)
