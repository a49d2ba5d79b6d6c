"""The settings sections of the batch engines (docs/spark.md): which engine runs the batch jobs, and the Spark
session the spark engine uses; the tree that holds them is `learnagg.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

BatchEngine = Literal["python", "spark"]


class BatchSettings(BaseModel):
    """How the batch jobs run (docs/spark.md)."""

    engine: BatchEngine = Field(
        default="python",
        description="Engine of `archive run`, `report progress|response` and the exhaust runner: `python` (in "
        "process) or `spark` (a Spark cluster reading PostgreSQL over JDBC; the `spark` extra). The command option "
        "`--engine` overrides it.",
    )


class SparkSettings(BaseModel):
    """The Spark session of the spark engine (docs/spark.md)."""

    master: str = Field(
        default="local[*]",
        description="Spark master: `local[*]` (this machine), `spark://host:7077` (standalone), `yarn`, "
        "`k8s://https://host:443`.",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark properties passed to the session builder (`spark.executor.memory`, "
        '`spark.sql.shuffle.partitions`, …); environment: `LEARNAGG_SPARK__CONF=\'{"spark.executor.cores": "4"}\'`.',
    )
    jdbc_jar: str = Field(
        default="/usr/share/java/postgresql.jar",
        description="The PostgreSQL JDBC driver jar (Debian package `libpostgresql-jdbc-java`), shipped to the "
        "executors.",
    )
    slice_learners: int = Field(
        default=20_000,
        ge=1,
        description="Learners per task of a report: a batch is read and formatted in slices of this many learners "
        "(in User UUID order).",
    )
    wave_partitions: int = Field(
        default=0,
        ge=0,
        description="Archive partitions claimed and written per Spark job; 0: four per core, at least 64.",
    )
