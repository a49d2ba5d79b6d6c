"""The Spark session of the spark engine (docs/spark.md): built from the settings `spark.*` once per process and
reused, and the JDBC connection to the store."""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from learnagg.errors import ConfigurationError, first_line
from learnagg.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ENGINES = ("python", "spark")
_lock = threading.Lock()


def engine_of(settings: Settings, override: str | None = None) -> str:
    """The engine a batch command runs on: its ``--engine`` option, else setting ``batch.engine``.

    Raises:
        ConfigurationError: an unknown engine name.
    """
    engine = override or settings.batch.engine
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown batch engine {engine!r}: use python or spark")
    return engine


@dataclass(frozen=True, slots=True)
class Jdbc:
    """Where Spark reads the store: a ``jdbc:postgresql://`` URL and the connection properties."""

    url: str
    properties: dict[str, str]

    def read(self, spark: SparkSession, query: str, predicates: list[str]) -> DataFrame:
        """``query`` as a DataFrame with one partition per predicate (each a WHERE clause over its columns)."""
        return spark.read.jdbc(self.url, f"({query}) AS q", predicates=predicates, properties=self.properties)


def jdbc_for(database_url: str) -> Jdbc:
    """The JDBC form of setting ``database_url``.

    Raises:
        ConfigurationError: the store is not PostgreSQL (the spark engine reads it over JDBC; docs/spark.md).
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"the spark engine reads the store over JDBC and needs PostgreSQL, not {url.get_backend_name()}: "
            "use --engine python"
        )
    host = url.host or "localhost"
    address = f"{host}:{url.port}" if url.port else host
    properties = {"driver": "org.postgresql.Driver", "fetchsize": "2000"}
    if url.username:
        properties["user"] = url.username
    if url.password is not None:
        properties["password"] = str(url.password)
    query = "&".join(f"{k}={v}" for k, v in url.query.items() if isinstance(v, str) and k != "host")
    return Jdbc(f"jdbc:postgresql://{address}/{url.database or ''}{'?' + query if query else ''}", properties)


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session for setting ``spark.master``: the running one when it has that master, else a
    new one (with ``spark.conf`` and the JDBC jar of ``spark.jdbc_jar``).

    Raises:
        ConfigurationError: PySpark is not installed (the ``learnagg[spark]`` extra), the JDBC jar is missing, or
            the session cannot start (no Java, an unreachable master).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigurationError("the spark engine needs PySpark: pip install 'learnagg[spark]'") from None
    s = settings.spark
    if "://" not in s.jdbc_jar and not os.path.isfile(s.jdbc_jar):
        raise ConfigurationError(
            f"spark.jdbc_jar {s.jdbc_jar!r} is missing: install the Debian package libpostgresql-jdbc-java or set "
            "LEARNAGG_SPARK__JDBC_JAR"
        )
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its connection chatter at exit is not ours to report
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            if active.sparkContext.master == s.master:
                return active
            active.stop()
        builder: Any = SparkSession.builder.master(s.master).appName("learnagg")
        conf = {"spark.jars": s.jdbc_jar, "spark.ui.showConsoleProgress": "false", **s.conf}
        # Python workers run this interpreter (where learnagg is installed) unless told otherwise (docs/spark.md);
        # PySpark reads the worker's interpreter from the environment only.
        os.environ.setdefault("PYSPARK_PYTHON", conf.get("spark.pyspark.python", sys.executable))
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            return builder.getOrCreate()  # type: ignore[no-any-return]
        except Exception as exc:  # no Java, a master that does not answer: one line
            raise ConfigurationError(f"cannot start Spark on {s.master!r}: {first_line(exc)}") from exc


def sql_text(statement: Any) -> str:
    """A SQLAlchemy statement or clause as PostgreSQL text with its values inlined (a JDBC query or predicate)."""
    from sqlalchemy.dialects import postgresql

    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
