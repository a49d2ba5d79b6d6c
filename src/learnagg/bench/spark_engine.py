"""The engine benchmark (`learnagg bench archive|exhaust --engine spark`, docs/spark.md): the python and the spark
engine on the same PostgreSQL data, one after the other in this process, with their wall time, rows per second and
driver memory, and a check that both wrote the same bytes.

- archive: the rows of `learnagg.bench.archive` (N rows, 8 per learner, 2 courses x 2 batches, 26 weeks) archived
  by each engine into its own folder; the checksums of the uncompressed files must agree.
- exhaust: the data of `learnagg.bench.exhaust` (E progress enrolments, R response question rows of which half are
  archived), the archived half written as archive files; each engine writes the progress and the response report
  of its batch through `write_report` (archives read from the object store); the SHA-256 of the reports must agree.

Memory: the peak resident memory of this process (the Python driver) and, for the spark engine, of the driver JVM
(with `local[*]` the executors run inside it; Python workers are separate processes not counted here).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, select, text

from learnagg import bootstrap
from learnagg.adapters.objectstore import ObjectStore
from learnagg.adapters.store import schema
from learnagg.adapters.store.tables import archival_metadata, batch_lease
from learnagg.batch.archival import run_archive
from learnagg.batch.exhaust_files import write_report
from learnagg.batch.progress import NoProgress, Progress
from learnagg.batch.spark.archival import run_archive_spark
from learnagg.batch.spark.reports import write_report_spark
from learnagg.batch.spark.session import spark_session
from learnagg.bench import exhaust as bx
from learnagg.bench.archive import seed_database
from learnagg.bench.common import memory_gib, postgres_version, scratch_database
from learnagg.domain import archive_csv as ac
from learnagg.errors import LearnaggError
from learnagg.settings import Settings, load_settings

ARCHIVE_FILE_ROWS = 50_000  # archived attempts per archive file of the exhaust benchmark


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _jvm_pids() -> list[int]:
    """The Java processes started by this one (the Spark driver JVM)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == os.getpid() and "java" in (entry / "comm").read_text():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


class Peaks:
    """Peak resident memory of this process and of its JVM children, sampled every 20 ms while the block runs."""

    def __init__(self) -> None:
        """A sampler, started by ``with``."""
        self.python = self.jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.python = max(self.python, _rss(os.getpid()))
        self.jvm = max(self.jvm, sum(_rss(p) for p in _jvm_pids()))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def __enter__(self) -> Peaks:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One timed job on one engine."""

    engine: str
    job: str
    rows: int
    seconds: float
    rows_per_s: float
    driver_peak_mib: float  # the Python driver process
    jvm_peak_mib: float  # the Spark driver JVM (executors included in local mode); 0 for the python engine
    digest: str  # what must agree between engines: archive checksums or the report's SHA-256


@dataclass
class EngineBenchResult:
    """Every run, the check that both engines wrote the same bytes, and the machine (the `--json` object)."""

    benchmark: str
    sizes: dict[str, int]
    runs: list[EngineRun] = field(default_factory=list)
    identical: bool = False
    spark_master: str = ""
    spark_start_seconds: float = 0.0
    seed_seconds: float = 0.0
    cores: int | None = None
    memory_gib: float | None = None
    python: str = platform.python_version()
    postgres_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


def _timed(engine: str, job: str, run: Callable[[], tuple[int, str]]) -> EngineRun:
    with Peaks() as peaks:
        started = time.perf_counter()
        rows, digest = run()
        seconds = time.perf_counter() - started
    per_s = round(rows / seconds) if seconds > 0 else 0.0
    return EngineRun(engine, job, rows, round(seconds, 2), per_s, _mib(peaks.python), _mib(peaks.jvm), digest)


def _start_spark(settings: Settings, result: EngineBenchResult) -> None:
    started = time.perf_counter()
    session = spark_session(settings)
    session.sparkContext.parallelize([0], 1).count()  # the JVM and one Python worker are up
    result.spark_start_seconds = round(time.perf_counter() - started, 1)
    result.spark_master = str(session.sparkContext.master)


def run_archive_engines(rows: int, questions: int, progress: Progress | None = None) -> EngineBenchResult:
    """Archive the same N rows with each engine (PostgreSQL only; see the module docstring).

    Raises:
        LearnaggError: when an engine does not archive the N rows, or the engines' files differ.
    """
    say = (progress or NoProgress()).start
    result = EngineBenchResult("archive", {"rows": rows, "questions": questions})
    with (
        tempfile.TemporaryDirectory(prefix="learnagg-bench-engines-") as tmp,
        scratch_database("postgres", tmp, "bench_engines") as url,
    ):
        settings = load_settings(database_url=url)
        say(f"inserting {rows} rows of {questions} questions in a child process (not timed)")
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            child.submit(seed_database, url, rows, questions).result()
        result.seed_seconds = round(time.perf_counter() - started, 1)
        app = bootstrap.build(settings)
        try:
            result.postgres_version = postgres_version(app.store)
            say("starting Spark (not timed)")
            _start_spark(settings, result)
            for engine, runner in (("python", run_archive), ("spark", run_archive_spark)):
                with app.store.write() as conn:  # not archived yet, for each engine
                    conn.execute(delete(archival_metadata))
                    conn.execute(delete(batch_lease))
                blobs = ObjectStore(f"{tmp}/{engine}")
                say(f"archive run, {engine} engine (timed)")

                def archive(runner: Any = runner, blobs: ObjectStore = blobs) -> tuple[int, str]:
                    summary = runner(app, blobs)
                    with app.store.read() as conn:
                        sums = conn.execute(select(archival_metadata.c.checksum).order_by("request_id")).scalars()
                        return summary.rows, hashlib.sha256("".join(s or "" for s in sums).encode()).hexdigest()

                result.runs.append(_timed(engine, "archive", archive))
        finally:
            app.close()
    _check(result, {"archive": rows})
    return result


def _check(result: EngineBenchResult, expected: dict[str, int]) -> None:
    """Both engines wrote the same bytes and the expected rows, job by job."""
    digests: dict[str, set[str]] = {}
    for run in result.runs:
        digests.setdefault(run.job, set()).add(run.digest)
    result.identical = all(len(d) == 1 for d in digests.values())
    wrong = [
        f"{r.engine} {r.job}: {r.rows} rows, expected {expected[r.job]}"
        for r in result.runs
        if r.rows != expected[r.job]
    ]
    if wrong or not result.identical:
        raise LearnaggError(f"benchmark invalid: {'; '.join(wrong) or 'the engines wrote different bytes'}")
    result.cores, result.memory_gib = os.cpu_count(), memory_gib()


def _archive_files(blobs: ObjectStore, archive_path: Path) -> int:
    """The benchmark's archived attempts as archive files of the response batch; returns the file count."""
    files = 0

    def rows() -> Iterator[dict[str, Any]]:
        with archive_path.open("rb") as fh:
            for line in fh:
                yield orjson.loads(line)

    source = rows()
    while True:
        chunk = [row for _, row in zip(range(ARCHIVE_FILE_ROWS), source, strict=False)]
        if not chunk:
            return files
        key = f"archived-data/{bx.RESPONSE_BATCH}_{bx.COURSE_ID}/2023-{files + 1}-{bx._T0}.csv.gz"
        with blobs.open_write(key) as out:
            writer = ac.ArchiveWriter(out)
            for row in chunk:
                writer.write([row[c] for c in ac.COLUMNS])
            writer.close()
        files += 1


class _Hashing:
    """A text sink that keeps only the SHA-256 and size of what is written."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, text: str) -> int:
        self.hash.update(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        return None


def run_exhaust_engines(
    enrolments: int, assessments: int, question_rows: int, progress: Progress | None = None
) -> EngineBenchResult:
    """Write both reports with each engine (PostgreSQL only; see the module docstring).

    Raises:
        LearnaggError: when a report does not have the expected rows, or the engines' reports differ.
    """
    say = (progress or NoProgress()).start
    config = bx.ExhaustBenchConfig("postgres", enrolments, assessments, question_rows)
    config.validate()
    sizes = {"enrolments": enrolments, "assessments": assessments, "question_rows": question_rows}
    result = EngineBenchResult("exhaust", sizes)
    with (
        tempfile.TemporaryDirectory(prefix="learnagg-bench-engines-") as tmp,
        scratch_database("postgres", tmp, "bench_engines") as url,
    ):
        settings = load_settings(database_url=url, blob_url=f"{tmp}/blobs")
        blobs = ObjectStore(settings.blob_url)
        app = bootstrap.build(settings)
        try:
            schema.upgrade(app.store)
            say(f"seeding {enrolments} enrolments and {question_rows} question rows (not timed)")
            started = time.perf_counter()
            bx.seed(app, config, Path(tmp) / "archived.jsonl")
            _archive_files(blobs, Path(tmp) / "archived.jsonl")
            with app.store.write() as conn:
                conn.execute(text("ANALYZE"))
            result.seed_seconds = round(time.perf_counter() - started, 1)
            result.postgres_version = postgres_version(app.store)
            say("starting Spark (not timed)")
            _start_spark(settings, result)
            jobs = (
                ("progress", "progress-exhaust", bx.PROGRESS_BATCH),
                ("response", "response-exhaust", bx.RESPONSE_BATCH),
            )
            for job, dataset, batch in jobs:
                for engine, writer in (("python", write_report), ("spark", write_report_spark)):
                    say(f"{job} report, {engine} engine (timed)")

                    def report(writer: Any = writer, dataset: str = dataset, batch: str = batch) -> tuple[int, str]:
                        sink = _Hashing()
                        rows = writer(app, blobs, dataset, batch, bx.COURSE_ID, sink, None)
                        return rows, sink.hash.hexdigest()

                    result.runs.append(_timed(engine, job, report))
        finally:
            app.close()
    expected = config.response_learners * bx.ATTEMPTS_PER_LEARNER * bx.QUESTIONS
    _check(result, {"progress": enrolments, "response": expected})
    return result
