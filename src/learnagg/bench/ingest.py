"""The ingest benchmark: assessment aggregator throughput against writing (and parsing + writing) the same rows.

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
4. The same events are decoded, parsed into rows and written with those aggregate rows into a third fresh database,
   one transaction per B attempts (`learnagg.bench.ingest_reference`). Timed.

Step 2 also records the aggregator's time per phase (`learnagg.streams.phases`).
"""

from __future__ import annotations

import math
import os
import platform
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, Table, select

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.common import (
    check_backend,
    check_range,
    memory_gib,
    postgres_version,
)
from learnagg.bench.demo_data import ECML_MIME_TYPE, DemoQuestion, assess_telemetry, batch_event
from learnagg.bench.ingest_databases import databases
from learnagg.bench.ingest_reference import bare_write, parse_write
from learnagg.domain.assess_event import parse_assessment_event
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.errors import InputError, LearnaggError
from learnagg.services.courses import load_courses
from learnagg.settings import Settings, load_settings
from learnagg.streams import phases

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
    parse_write_attempts_per_s: float
    parse_write_ratio: float
    aggregator_seconds: float
    bare_write_seconds: float
    bare_write_rows_per_s: float
    parse_write_seconds: float
    # The parse + write reference per step: decode, parse into rows, write (they sum to parse_write_seconds).
    parse_write_steps: dict[str, float]
    # The aggregator's seconds per phase (`learnagg.streams.phases.ORDER`), then "other": leases, loop, savepoints.
    aggregator_phases: dict[str, float] = field(default_factory=dict)
    assessment_rows: int = 0
    activity_rows: int = 0
    cores: int | None = None
    memory_gib: float | None = None
    python: str = ""
    sqlite_version: str = ""
    postgres_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        """The (label, value) lines of the printed table: rates, ratios, then the aggregator's time per phase."""
        version = f"PostgreSQL {self.postgres_version}" if self.postgres_version else f"SQLite {self.sqlite_version}"
        steps = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.parse_write_steps.items())
        total = sum(self.aggregator_phases.values()) or 1.0
        return [
            ("attempts (N) x questions (Q)", f"{self.attempts} x {self.questions}"),
            ("batch size (B)", str(self.batch_size)),
            ("aggregator", f"{self.aggregator_attempts_per_s:,.0f} attempts/s ({self.aggregator_seconds:.2f} s)"),
            ("bare write", f"{self.bare_write_attempts_per_s:,.0f} attempts/s ({self.bare_write_seconds:.2f} s)"),
            (
                "bare write rows",
                f"{self.assessment_rows} + {self.activity_rows} rows, {self.bare_write_rows_per_s:,.0f} rows/s",
            ),
            ("parse + write", f"{self.parse_write_attempts_per_s:,.0f} attempts/s ({self.parse_write_seconds:.2f} s)"),
            ("parse + write steps", steps),
            ("ratio aggregator / bare write", f"{self.ratio:.3f}"),
            ("ratio aggregator / (parse + write)", f"{self.parse_write_ratio:.3f}"),
            *(
                (f"aggregator: {name}", f"{seconds:.2f} s ({seconds / total:.0%})")
                for name, seconds in self.aggregator_phases.items()
            ),
            ("machine", f"{self.cores} cores, {self.memory_gib} GiB, Python {self.python}"),
            ("database", version),
        ]


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


def _payload_chunks(config: IngestBenchConfig) -> Iterator[list[str]]:
    """The published event texts again, B per chunk."""
    chunk: list[str] = []
    for event in bench_events(config.attempts, config.questions):
        chunk.append(orjson.dumps(event).decode())
        if len(chunk) == config.batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _drain(app: bootstrap.App, attempts: int) -> tuple[float, dict[str, float]]:
    """Run the real worker until the topic is drained; returns the elapsed seconds and the seconds per phase."""
    worker = bootstrap.build_worker(app, [JOB], max_retries=0)
    with phases.recording() as times:
        started = time.perf_counter()
        worker.start(until_idle=True)
        elapsed = time.perf_counter() - started
    counters = worker.consumers[0].counters
    if counters["success"] != attempts or counters["failed"] or counters["skipped"]:
        raise LearnaggError(f"benchmark invalid: the aggregator reported {dict(counters)} for {attempts} attempts")
    split = {name: round(times.seconds.get(name, 0.0), 3) for name in phases.ORDER}
    split["other"] = round(elapsed - sum(times.seconds.values()), 3)
    return elapsed, split


def _rows(conn: Connection, table: Table, order: Sequence[Any]) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(select(table).order_by(*order)).mappings()]
    # Columns the aggregator never wrote stay SQL NULL: leave them out (a None JSON value would insert 'null').
    unset = [c.name for c in table.columns if all(r[c.name] is None for r in rows)]
    for row in rows:
        for name in unset:
            del row[name]
    return rows


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
    with databases(config.backend, config.database_url) as (agg_url, bare_url, parse_write_url):
        app = bootstrap.build(_settings(agg_url, config.batch_size))
        try:
            schema.upgrade(app.store)
            say(f"publishing {config.attempts} attempt events of {config.questions} answers (not timed)")
            _publish(app, config)
            say(f"draining with the assessment aggregator (batch size {config.batch_size})")
            agg_seconds, agg_phases = _drain(app, config.attempts)
            parse = partial(parse_assessment_event, max_questions=app.settings.assessment.max_questions)
            now = app.clock()
            with app.store.read() as conn:
                a, u = assessment_aggregator.c, user_activity_agg.c
                attempt_rows = _rows(conn, assessment_aggregator, [a.last_attempted_on, a.attempt_id])
                activity_rows = _rows(conn, user_activity_agg, [u.activity_id, u.context_id, u.user_id])
            pg_version = postgres_version(app.store)
        finally:
            app.close()
        say(f"bare write of {len(attempt_rows)} + {len(activity_rows)} rows into a fresh database")
        bare_seconds = bare_write(bare_url, attempt_rows, activity_rows, config.batch_size)
        say(f"parse + write of the same {config.attempts} events into a fresh database")
        steps, parsed = parse_write(parse_write_url, _payload_chunks(config), activity_rows, parse, now)
    if parsed != config.attempts:
        raise LearnaggError(f"benchmark invalid: parse + write wrote {parsed} of {config.attempts} attempts")
    agg_rate = config.attempts / agg_seconds
    bare_rate = config.attempts / bare_seconds
    parse_write_rate = config.attempts / steps.total
    return IngestBenchResult(
        backend=config.backend,
        attempts=config.attempts,
        questions=config.questions,
        batch_size=config.batch_size,
        aggregator_attempts_per_s=round(agg_rate, 1),
        bare_write_attempts_per_s=round(bare_rate, 1),
        ratio=round(agg_rate / bare_rate, 3),
        parse_write_attempts_per_s=round(parse_write_rate, 1),
        parse_write_ratio=round(agg_rate / parse_write_rate, 3),
        aggregator_seconds=round(agg_seconds, 3),
        bare_write_seconds=round(bare_seconds, 3),
        bare_write_rows_per_s=round((len(attempt_rows) + len(activity_rows)) / bare_seconds, 1),
        parse_write_seconds=round(steps.total, 3),
        parse_write_steps={
            "decode": round(steps.decode, 3),
            "parse": round(steps.parse, 3),
            "write": round(steps.write, 3),
        },
        aggregator_phases=agg_phases,
        assessment_rows=len(attempt_rows),
        activity_rows=len(activity_rows),
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        sqlite_version=sqlite3.sqlite_version,
        postgres_version=pg_version,
    )
