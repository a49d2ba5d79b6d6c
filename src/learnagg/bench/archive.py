"""The archival benchmark: rows per second of `archive run` and of `archive delete` (verify + delete), peak memory.

Procedure (BENCHMARKS.md):
1. A fresh database (SQLite file in a temporary folder, or a database on a private durable PostgreSQL server),
   schema upgraded, and a local object-store folder. N `assessment_aggregator` rows are inserted by a child
   process (so their generation does not weigh on the measured process's memory), not timed:
   ceil(N/8) learners in 2 courses × 2 batches, each with 4 assessments × 2 attempts of Q questions, all of a
   learner's attempts in one of 26 consecutive weeks; each learner's course row holds the matching `aggregates`
   and `agg_details`, as the aggregator would have left them.
2. Timed: `run_archive` over every batch (one gzipped CSV per batch and week, read back and recorded).
3. Timed: `run_delete` (every file read twice, checked, learners recomputed, rows deleted).
The resident memory of the process and of its worker processes (`archival.workers`, 0 = one per core) is
sampled every 10 ms during each timed phase; the peak of their sum is reported.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import random
import resource
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, insert, select, text

from learnagg import bootstrap
from learnagg.adapters.objectstore import open_store
from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import assessment_aggregator, user_activity_agg
from learnagg.batch.archival import run_archive
from learnagg.batch.archival_delete import run_delete
from learnagg.batch.archival_pool import worker_count
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.common import check_backend, check_range, memory_gib, postgres_version, scratch_database
from learnagg.domain.archive_csv import WEEK_MS
from learnagg.domain.attempt_metrics import AttemptRecord, content_metrics, render_agg_details
from learnagg.errors import LearnaggError
from learnagg.settings import Settings, load_settings

COURSES = 2
BATCHES_PER_COURSE = 2
WEEKS = 26
CONTENTS = 4
ATTEMPTS = 2
ROWS_PER_LEARNER = CONTENTS * ATTEMPTS
INSERT_CHUNK = 10_000
SEED = 11
_FIRST_WEEK = 1_700_438_400_000  # Monday 2023-11-20 00:00 UTC


@dataclass(frozen=True, slots=True)
class ArchiveBenchConfig:
    """What to run: backend, N rows, Q questions per row."""

    backend: str = "sqlite"
    rows: int = 100_000
    questions: int = 4

    def validate(self) -> None:
        """Refuse arguments the benchmark cannot run with.

        Raises:
            InputError: with a one-line reason.
        """
        check_backend(self.backend)
        check_range("--rows", self.rows, 8, 20_000_000)
        check_range("--questions", self.questions, 0, 100)


@dataclass(frozen=True, slots=True)
class ArchiveBenchResult:
    """The measured figures and the machine (the `--json` object, in this key order)."""

    backend: str
    rows: int
    questions: int
    learners: int
    partitions: int
    chunk_rows: int  # setting archival.chunk_rows: rows per read and per deletion transaction
    workers: int  # processes that archived and deleted (setting archival.workers)
    archive_rows_per_s: float
    delete_rows_per_s: float
    archive_seconds: float
    delete_seconds: float
    archive_cpu_seconds: float  # this process and its ended workers (a PostgreSQL server's CPU is not counted)
    delete_cpu_seconds: float
    archive_mib: float
    baseline_rss_mib: float
    archive_peak_rss_mib: float
    delete_peak_rss_mib: float
    cores: int | None
    memory_gib: float | None
    python: str
    sqlite_version: str
    postgres_version: str | None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


# -- memory ------------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """The resident set size of this process now (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tree_rss_bytes() -> int:
    """The resident set size of this process and of its worker processes now (pages they share are counted
    once per process, so this overstates the memory in use); elsewhere than Linux, this process only."""
    total = rss_bytes()
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as fh:
            children = fh.read().split()
    except OSError:
        return total
    for pid in children:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):  # it ended meanwhile
            continue
    return total


class PeakRss:
    """Sample the resident memory of this process and its workers every ``interval`` seconds in a thread while
    the block runs."""

    def __init__(self, interval: float = 0.01) -> None:
        """Prepare a sampler (started by ``with``)."""
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = tree_rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_bytes())


def _cpu() -> float:
    """CPU seconds of this process and of its ended (waited-for) worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


# -- generated input -----------------------------------------------------------------------------------------


def _question(rng: random.Random, index: int, ts: int) -> dict[str, Any]:
    score = float(rng.randint(0, 1))
    return {
        "id": f"do_bench_question_{index}",
        "assess_ts": ts + index * 20_000,
        "max_score": 1.0,
        "score": score,
        "type": "mcq",
        "title": f"Question {index}: which option is right?",
        "resvalues": [{"1": '{"text":"Option A"}'}],
        "params": [{"1": '{"text":"Option A"}'}, {"2": '{"text":"Option B"}'}, {"answer": '{"correct":["1"]}'}],
        "description": None,
        "duration": 20.0,
    }  # in the key order the assessment aggregator stores (Question.to_json)


def bench_learners(
    rows: int, questions: int, seed: int = SEED
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Each learner's attempt rows and course row (aggregates and agg_details as the aggregator writes them)."""
    rng = random.Random(seed)
    batches = [
        (f"do_bench_course_{c}", f"bench_batch_{c}_{b}") for c in range(COURSES) for b in range(BATCHES_PER_COURSE)
    ]
    made = 0
    learner = 0
    while made < rows:
        course_id, batch_id = batches[learner % len(batches)]
        week_start = _FIRST_WEEK + (learner // len(batches)) % WEEKS * WEEK_MS
        user_id = f"user-{learner:08d}"
        attempts: list[dict[str, Any]] = []
        for c in range(CONTENTS):
            for a in range(ATTEMPTS):
                if made == rows:
                    break
                ts = week_start + rng.randrange(WEEK_MS - 3_600_000)
                q = [_question(rng, i, ts) for i in range(1, questions + 1)]
                score = sum(x["score"] for x in q)
                attempts.append(
                    {
                        "user_id": user_id,
                        "course_id": course_id,
                        "batch_id": batch_id,
                        "content_id": f"do_bench_assessment_{c}",
                        "attempt_id": f"{learner:08d}{c}{a}",
                        "created_on": ts,
                        "updated_on": ts,
                        "last_attempted_on": ts,
                        "total_score": score,
                        "total_max_score": float(questions),
                        "grand_total": f"{score}/{float(questions)}",
                        "question": q,
                    }
                )
                made += 1
        records = [
            AttemptRecord(r["attempt_id"], r["content_id"], r["total_score"], r["total_max_score"], r["updated_on"])
            for r in attempts
        ]
        metrics = content_metrics(records)
        course_row = {
            "activity_type": "Course",
            "activity_id": course_id,
            "user_id": user_id,
            "context_id": f"cb:{batch_id}",
            "aggregates": metrics,
            "agg_last_updated": dict.fromkeys(metrics, max(r["updated_on"] for r in attempts)),
            "agg_details": render_agg_details(records),
        }
        learner += 1
        yield attempts, course_row


def seed_database(url: str, rows: int, questions: int) -> int:
    """Create the schema and insert the benchmark rows into the database at ``url``; returns the learner count.

    Run in a child process, so the memory of generating N rows never shows in the measured process.
    """
    store = Store(url)
    try:
        schema.upgrade(store)
        learners = _seed(store, ArchiveBenchConfig("sqlite", rows, questions))
        if store.backend == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        return learners
    finally:
        store.dispose()


def _seed(store: Store, config: ArchiveBenchConfig) -> int:
    attempts: list[dict[str, Any]] = []
    courses: list[dict[str, Any]] = []
    learners = 0

    def flush() -> None:
        with store.write() as conn:
            conn.execute(insert(assessment_aggregator), attempts)
            conn.execute(insert(user_activity_agg), courses)
        attempts.clear()
        courses.clear()

    for rows, course_row in bench_learners(config.rows, config.questions):
        attempts.extend(rows)
        courses.append(course_row)
        learners += 1
        if len(attempts) >= INSERT_CHUNK:
            flush()
    if attempts:
        flush()
    return learners


# -- databases ----------------------------------------------------------------------------------------------


def _count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one())


def run_archive_bench(config: ArchiveBenchConfig, progress: Progress | None = None) -> ArchiveBenchResult:
    """Run the archival benchmark (see the module docstring).

    Raises:
        InputError: for bad arguments.
        ConfigurationError: when the database cannot be created.
        LearnaggError: when a phase does not archive or delete exactly the N rows.
    """
    config.validate()
    say = (progress or NoProgress()).start  # one step per phase, nothing to count
    with (
        tempfile.TemporaryDirectory(prefix="learnagg-bench-archive-") as tmp,
        scratch_database(config.backend, tmp, "bench_archive") as url,
    ):
        settings: Settings = load_settings(database_url=url, blob_url=f"{tmp}/blobs")
        say(f"inserting {config.rows} rows of {config.questions} questions in a child process (not timed)")
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            learners = child.submit(seed_database, url, config.rows, config.questions).result()
        app = bootstrap.build(settings)
        try:
            pg_version = postgres_version(app.store)
            blobs = open_store(settings.blob_url)
            baseline = rss_bytes()
            say("archive run (timed)")
            with PeakRss() as archive_mem:
                started, cpu = time.perf_counter(), _cpu()
                archived = run_archive(app, blobs)
                archive_seconds, archive_cpu = time.perf_counter() - started, _cpu() - cpu
            if archived.rows != config.rows or archived.failed:
                raise LearnaggError(f"benchmark invalid: archived {archived.rows} of {config.rows} rows")
            say("archive delete (timed)")
            with PeakRss() as delete_mem:
                started, cpu = time.perf_counter(), _cpu()
                deleted = run_delete(app, blobs)
                delete_seconds, delete_cpu = time.perf_counter() - started, _cpu() - cpu
            if deleted.rows_deleted != config.rows or deleted.failed or _count(app.store):
                raise LearnaggError(f"benchmark invalid: deleted {deleted.rows_deleted} of {config.rows} rows")
        finally:
            app.close()
    return ArchiveBenchResult(
        backend=config.backend,
        rows=config.rows,
        questions=config.questions,
        learners=learners,
        partitions=archived.partitions,
        chunk_rows=settings.archival.chunk_rows,
        workers=worker_count(settings.archival.workers, archived.partitions),
        archive_rows_per_s=round(config.rows / archive_seconds, 1),
        delete_rows_per_s=round(config.rows / delete_seconds, 1),
        archive_seconds=round(archive_seconds, 3),
        delete_seconds=round(delete_seconds, 3),
        archive_cpu_seconds=round(archive_cpu, 3),
        delete_cpu_seconds=round(delete_cpu, 3),
        archive_mib=_mib(archived.bytes),
        baseline_rss_mib=_mib(baseline),
        archive_peak_rss_mib=_mib(archive_mem.peak),
        delete_peak_rss_mib=_mib(delete_mem.peak),
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        sqlite_version=sqlite3.sqlite_version,
        postgres_version=pg_version,
    )
