"""The ingest benchmark: assessment aggregator throughput against the bare-write limit of the rows it writes.

Procedure (BENCHMARKS.md):
1. A fresh database (SQLite file in a temporary folder, or a database on a private durable PostgreSQL server),
   schema upgraded; one course whose leaves are the benchmark's contents, so leaf validation
   (docs/jobs/assessment.md#a3) and the
   question-count guard (docs/jobs/assessment.md#a6) run; N assessment batch events published to the assess topic (not
   timed).
2. Timed: the real worker drains the topic with ``worker.batch_size = B``.
3. The `assessment_aggregator` and `user_activity_agg` rows the aggregator wrote are read back, and inserted
   with plain INSERT executemany into a second fresh database with the same schema, one transaction per B
   attempts (their attempt rows plus the aggregate rows of the learners first seen among them). Timed.
"""

from __future__ import annotations

import math
import os
import platform
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Table, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store, normalise_url
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.common import (
    check_backend,
    check_range,
    memory_gib,
    postgres_version,
    private_postgres,
)
from learnagg.bench.demo_data import ECML_MIME_TYPE, DemoQuestion, assess_telemetry, batch_event
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.errors import ConfigurationError, InputError, LearnaggError
from learnagg.services.courses import load_courses
from learnagg.settings import Settings, load_settings

CONTENTS_PER_LEARNER = 4
COURSE_ID = "do_bench_course"
BATCH_ID = "bench_batch"
JOB = "assessment-aggregator"
SEED = 7
PUBLISH_CHUNK = 2000  # events per publish transaction (publishing is not timed)
_FIRST_TS = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class IngestBenchConfig:
    """What to run: backend, N attempts of Q questions, worker batch size B, optional PostgreSQL server URL."""

    backend: str
    attempts: int = 20_000
    questions: int = 10
    batch_size: int = 500
    database_url: str | None = None

    def validate(self) -> None:
        """Refuse arguments the benchmark cannot run with.

        Raises:
            InputError: with a one-line reason.
        """
        check_backend(self.backend)
        check_range("--attempts", self.attempts, 1, 10_000_000)
        check_range("--questions", self.questions, 1, 1000)
        check_range("--batch-size", self.batch_size, 1, 100_000)
        if self.database_url is not None and self.backend != "postgres":
            raise InputError("--database-url is for --backend postgres (SQLite always uses a temporary folder)")


@dataclass(frozen=True, slots=True)
class IngestBenchResult:
    """The measured figures and the machine they were measured on (the `--json` object, in this key order)."""

    backend: str
    attempts: int
    questions: int
    batch_size: int
    aggregator_attempts_per_s: float
    bare_write_attempts_per_s: float
    ratio: float
    aggregator_seconds: float
    bare_write_seconds: float
    bare_write_rows_per_s: float
    assessment_rows: int
    activity_rows: int
    cores: int | None
    memory_gib: float | None
    python: str
    sqlite_version: str
    postgres_version: str | None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


# -- generated input (pure) ---------------------------------------------------------------------------------


def content_ids() -> list[str]:
    """The benchmark's assessments: the leaves of its course."""
    return [f"do_bench_assessment_{i}" for i in range(1, CONTENTS_PER_LEARNER + 1)]


def bench_course(questions: int) -> dict[str, Any]:
    """A one-level course whose leaves are the benchmark's SelfAssess contents with ``totalQuestions = Q``."""
    leaves = [
        {
            "identifier": cid,
            "name": f"Benchmark assessment {i}",
            "mimeType": ECML_MIME_TYPE,
            "contentType": "SelfAssess",
            "totalQuestions": questions,
        }
        for i, cid in enumerate(content_ids(), start=1)
    ]
    return {"identifier": COURSE_ID, "name": "Ingest benchmark", "mimeType": COLLECTION_MIME_TYPE, "children": leaves}


def bench_events(attempts: int, questions: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """N assessment batch events of Q distinct answers each, over ceil(N/4) learners × 4 contents.

    Cohort order: every learner sits the first assessment, then the second, and so on, so a learner's later
    attempts find the earlier ones in stored history. ``assessmentTs`` grows with the position in the stream.
    """
    rng = random.Random(seed)
    learners = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(math.ceil(attempts / 4))]
    contents = content_ids()
    options = ("Option A", "Option B", "Option C", "Option D")
    banks = {
        cid: [
            DemoQuestion(str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"Question {q}", "mcq", 1, options, 1)
            for q in range(1, questions + 1)
        ]
        for cid in contents
    }
    produced = 0
    for content_id in contents:
        for user_id in learners:
            if produced == attempts:
                return
            start = _FIRST_TS + produced * 1000
            attempt_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            events = []
            for index, question in enumerate(banks[content_id], start=1):
                chosen = rng.randint(1, len(question.options))
                events.append(
                    assess_telemetry(
                        user_id=user_id,
                        course_id=COURSE_ID,
                        batch_id=BATCH_ID,
                        content_id=content_id,
                        unit_id=COURSE_ID,
                        attempt_id=attempt_id,
                        question=question,
                        index=index,
                        chosen=chosen,
                        score=1 if chosen == question.answer else 0,
                        ets=start + index * 20_000,
                        duration=20,
                    )
                )
            yield batch_event(
                course_id=COURSE_ID,
                batch_id=BATCH_ID,
                user_id=user_id,
                content_id=content_id,
                attempt_id=attempt_id,
                ts=start,
                events=events,
            )
            produced += 1


def write_transactions(
    attempt_rows: Sequence[Mapping[str, Any]], activity_rows: Sequence[Mapping[str, Any]], batch_size: int
) -> list[tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]]:
    """Group rows as the aggregator's transactions first wrote them: B attempts (in stream order) per transaction,
    with the course aggregate rows of the learners first seen among them."""
    by_learner = {(r["activity_id"], r["context_id"], r["user_id"]): r for r in activity_rows}
    seen: set[tuple[str, str, str]] = set()
    out = []
    for start in range(0, len(attempt_rows), batch_size):
        chunk = list(attempt_rows[start : start + batch_size])
        fresh = []
        for row in chunk:
            key = (row["course_id"], f"cb:{row['batch_id']}", row["user_id"])
            if key not in seen and key in by_learner:
                seen.add(key)
                fresh.append(by_learner[key])
        out.append((chunk, fresh))
    leftover = [r for k, r in by_learner.items() if k not in seen]
    if leftover:
        out.append(([], leftover))
    return out


# -- machine ------------------------------------------------------------------------------------------------


# -- databases ----------------------------------------------------------------------------------------------


@contextmanager
def _sqlite_databases() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="learnagg-bench-") as folder:
        yield f"sqlite:///{folder}/aggregator.db", f"sqlite:///{folder}/bare-write.db"


@contextmanager
def _private_postgres() -> Iterator[tuple[str, str]]:
    with private_postgres() as server:
        yield server.create_database("bench_aggregator"), server.create_database("bench_bare_write")


@contextmanager
def _scratch_postgres(server_url: str) -> Iterator[tuple[str, str]]:
    """Two scratch databases created (and dropped afterwards) on the server of ``server_url``."""
    try:
        url = make_url(normalise_url(server_url))
    except ArgumentError as exc:
        raise InputError(f"invalid database URL {server_url!r}") from exc
    if url.get_backend_name() != "postgresql":
        raise InputError("--database-url must be a postgresql:// URL")
    suffix = f"{os.getpid()}_{int(time.time())}"
    names = [f"learnagg_bench_agg_{suffix}", f"learnagg_bench_bare_{suffix}"]
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
        yield url.set(database=names[0]).render_as_string(False), url.set(database=names[1]).render_as_string(False)
    finally:
        if created:
            with admin.connect() as conn:
                for name in created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _databases(config: IngestBenchConfig) -> Any:
    if config.backend == "sqlite":
        return _sqlite_databases()
    if config.database_url:
        return _scratch_postgres(config.database_url)
    return _private_postgres()


# -- the run ------------------------------------------------------------------------------------------------


def _settings(url: str, batch_size: int) -> Settings:
    settings = load_settings(database_url=url)
    worker = settings.worker.model_copy(update={"batch_size": batch_size})
    return settings.model_copy(update={"worker": worker})


def _publish(app: bootstrap.App, config: IngestBenchConfig) -> None:
    tree = bench_course(config.questions)
    now = app.clock()
    with app.store.write() as conn:
        load_courses(conn, app.store.dialect, [(parse_hierarchy(tree), tree)], now)
    pending: list[tuple[str | None, str]] = []

    def flush() -> None:
        with app.store.write() as conn:
            app.log.append(conn, app.topics.assess, pending, app.clock())
        pending.clear()

    for event in bench_events(config.attempts, config.questions):
        pending.append((None, orjson.dumps(event).decode()))
        if len(pending) >= PUBLISH_CHUNK:
            flush()
    if pending:
        flush()


def _drain(app: bootstrap.App, attempts: int) -> float:
    """Run the real worker until the topic is drained; returns the elapsed seconds."""
    worker = bootstrap.build_worker(app, [JOB], max_retries=0)
    started = time.perf_counter()
    worker.start(until_idle=True)
    elapsed = time.perf_counter() - started
    counters = worker.consumers[0].counters
    if counters["success"] != attempts or counters["failed"] or counters["skipped"]:
        raise LearnaggError(f"benchmark invalid: the aggregator reported {dict(counters)} for {attempts} attempts")
    return elapsed


def _rows(conn: Connection, table: Table, order: Sequence[Any]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(select(table).order_by(*order)).mappings()]
    # Columns the aggregator never wrote stay SQL NULL: leave them out (a None JSON value would insert 'null').
    unset = [c.name for c in table.columns if all(r[c.name] is None for r in rows)]
    for row in rows:
        for name in unset:
            del row[name]
    return rows


def _bare_write(url: str, attempt_rows: list[dict[str, Any]], activity_rows: list[dict[str, Any]], b: int) -> float:
    """Insert the rows into a fresh database with plain INSERT executemany; returns the elapsed seconds."""
    store = Store(url)
    try:
        schema.upgrade(store)
        transactions = write_transactions(attempt_rows, activity_rows, b)
        started = time.perf_counter()
        for attempts, activities in transactions:
            with store.write() as conn:
                if attempts:
                    conn.execute(insert(assessment_aggregator), attempts)
                if activities:
                    conn.execute(insert(user_activity_agg), activities)
        elapsed = time.perf_counter() - started
        with store.read() as conn:
            written = conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one()
        if written != len(attempt_rows):
            raise LearnaggError(f"benchmark invalid: bare write stored {written} of {len(attempt_rows)} rows")
        return elapsed
    finally:
        store.dispose()


def run_ingest_bench(config: IngestBenchConfig, progress: Progress | None = None) -> IngestBenchResult:
    """Run the ingest benchmark (see the module docstring).

    Args:
        config: the validated-on-entry arguments.
        progress: told each phase as a step, a short line (e.g. to print on stderr).

    Raises:
        InputError: for bad arguments.
        ConfigurationError: when the database cannot be created.
        LearnaggError: when a phase does not produce exactly the expected rows.
    """
    config.validate()
    say = (progress or NoProgress()).start  # one step per phase, nothing to count
    with _databases(config) as (agg_url, bare_url):
        app = bootstrap.build(_settings(agg_url, config.batch_size))
        try:
            schema.upgrade(app.store)
            say(f"publishing {config.attempts} attempt events of {config.questions} answers (not timed)")
            _publish(app, config)
            say(f"draining with the assessment aggregator (batch size {config.batch_size})")
            agg_seconds = _drain(app, config.attempts)
            with app.store.read() as conn:
                a, u = assessment_aggregator.c, user_activity_agg.c
                attempt_rows = _rows(conn, assessment_aggregator, [a.last_attempted_on, a.attempt_id])
                activity_rows = _rows(conn, user_activity_agg, [u.activity_id, u.context_id, u.user_id])
            pg_version = postgres_version(app.store)
        finally:
            app.close()
        say(f"bare write of {len(attempt_rows)} + {len(activity_rows)} rows into a fresh database")
        bare_seconds = _bare_write(bare_url, attempt_rows, activity_rows, config.batch_size)
    agg_rate = config.attempts / agg_seconds
    bare_rate = config.attempts / bare_seconds
    return IngestBenchResult(
        backend=config.backend,
        attempts=config.attempts,
        questions=config.questions,
        batch_size=config.batch_size,
        aggregator_attempts_per_s=round(agg_rate, 1),
        bare_write_attempts_per_s=round(bare_rate, 1),
        ratio=round(agg_rate / bare_rate, 3),
        aggregator_seconds=round(agg_seconds, 3),
        bare_write_seconds=round(bare_seconds, 3),
        bare_write_rows_per_s=round((len(attempt_rows) + len(activity_rows)) / bare_seconds, 1),
        assessment_rows=len(attempt_rows),
        activity_rows=len(activity_rows),
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        sqlite_version=sqlite3.sqlite_version,
        postgres_version=pg_version,
    )
