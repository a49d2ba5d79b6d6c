"""The exhaust benchmark: the progress report of a big batch and the response report of a million question rows.

Procedure (BENCHMARKS.md):
1. A fresh database (SQLite file in a temporary folder, or a database on a private durable PostgreSQL server),
   schema upgraded, seeded with executemany (not timed): one course of A SelfAssess assessments and 10 resources;
   a progress batch of E enrolled learners, each with a `contentstatus` map and a course aggregate row holding
   score, max_score and attempts_count of every assessment (one in ten also has legacy integer `agg` scores); a
   response batch whose R question rows are half live `assessment_aggregator` rows (10 questions per attempt) and
   half archived attempts, written to a JSON-lines file in shuffled learner order.
2. Timed, each in a fresh child process: `write_progress_report`, then `write_response_report` fed the archived
   attempts parsed line by line from that file (as the runner will parse archive files), each writing to a
   temporary file. The child reports wall time, its own CPU time, and VmRSS before / VmHWM after the report (the
   peak RSS of its own image, which `ru_maxrss` is not after a fork-exec).
"""

from __future__ import annotations

import math
import os
import platform
import random
import resource
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, text

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.tables import assessment_aggregator, course_batch, user_activity_agg, user_enrolments
from learnagg.adapters.store.tables import users as users_table
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.common import check_backend, check_range, memory_gib, scratch_database
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.errors import LearnaggError
from learnagg.services.courses import load_courses
from learnagg.settings import load_settings

COURSE_ID = "do_exhaust_course"
PROGRESS_BATCH, RESPONSE_BATCH = "bench_progress", "bench_response"
QUESTIONS = 10  # per attempt
ATTEMPTS_PER_LEARNER = 4  # response batch: 2 live + 2 archived
RESOURCES = 10
SEED = 11
SEED_CHUNK = 5000
_T0 = 1_700_000_000_000
PROGRESS_TARGET_S, RESPONSE_TARGET_S, RSS_TARGET_MIB = 10.0, 20.0, 1024.0


@dataclass(frozen=True, slots=True)
class ExhaustBenchConfig:
    """What to run: backend, E progress enrolments of A assessments, R response question rows."""

    backend: str
    enrolments: int = 100_000
    assessments: int = 20
    question_rows: int = 1_000_000

    def validate(self) -> None:
        """Refuse arguments the benchmark cannot run with.

        Raises:
            InputError: with a one-line reason.
        """
        check_backend(self.backend)
        check_range("--enrolments", self.enrolments, 1, 10_000_000)
        check_range("--assessments", self.assessments, 2, 500)
        check_range("--question-rows", self.question_rows, QUESTIONS * ATTEMPTS_PER_LEARNER, 100_000_000)

    @property
    def response_learners(self) -> int:
        """Learners of the response batch: each has 2 live and 2 archived attempts of 10 questions."""
        return math.ceil(self.question_rows / (QUESTIONS * ATTEMPTS_PER_LEARNER))


@dataclass(frozen=True, slots=True)
class ReportRun:
    """One timed report in a child process."""

    rows: int
    seconds: float
    cpu_seconds: float
    output_mib: float
    rss_before_mib: float
    peak_rss_mib: float


@dataclass(frozen=True, slots=True)
class ExhaustBenchResult:
    """The measured figures and the machine they were measured on (the `--json` object, in this key order)."""

    backend: str
    enrolments: int
    assessments: int
    progress: ReportRun
    question_rows: int
    archived_question_rows: int
    response: ReportRun
    seed_seconds: float
    cores: int | None
    memory_gib: float | None
    python: str
    sqlite_version: str
    postgres_version: str | None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


# -- generated input (pure) ---------------------------------------------------------------------------------


def assessment_ids(count: int) -> list[str]:
    """The course's assessments, in hierarchy order."""
    return [f"do_exhaust_assessment_{i:03d}" for i in range(1, count + 1)]


def _node(identifier: str, name: str, mime_type: str, **extra: Any) -> dict[str, Any]:
    return {"identifier": identifier, "name": name, "mimeType": mime_type, **extra}


def bench_course(assessments: int) -> dict[str, Any]:
    """Units of five leaves: the assessments, then the resources."""
    ecml = "application/vnd.ekstep.ecml-archive"
    leaves = [_node(c, f"Quiz {c[-3:]}", ecml, contentType="SelfAssess") for c in assessment_ids(assessments)]
    leaves += [_node(f"do_exhaust_resource_{i}", f"Video {i}", "video/mp4") for i in range(RESOURCES)]
    units = [
        _node(f"do_exhaust_unit_{u}", f"Unit {u}", COLLECTION_MIME_TYPE, children=leaves[u * 5 : u * 5 + 5])
        for u in range(math.ceil(len(leaves) / 5))
    ]
    return _node(COURSE_ID, "Exhaust benchmark", COLLECTION_MIME_TYPE, channel="org-1", children=units)


def learner_ids(count: int, seed: int = SEED) -> list[str]:
    """Random UUIDs: insertion order is not id order."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _question(rng: random.Random, attempt: str, index: int, ts: int) -> dict[str, Any]:
    answer = rng.randint(1, 4)
    options = [{str(o): f'{{"text":"Option {o}\\n"}}'} for o in range(1, 5)]
    return {
        "id": f"{attempt[:8]}-q{index:02d}",
        "assess_ts": ts + index * 20_000,
        "max_score": 1.0,
        "score": float(answer == 1),
        "type": "mcq",
        "title": f"Question {index}\n",
        "description": "",
        "duration": rng.uniform(3, 60),
        "resvalues": [options[answer - 1]],
        "params": [*options, {"answer": '{"correct":["1"]}'}],
    }


def response_attempts(learners: list[str], contents: list[str], live: bool, seed: int = SEED) -> Iterator[dict]:
    """Two attempts per learner of 10 questions each: live ones in learner order, archived ones shuffled."""
    rng = random.Random(seed + (1 if live else 2))
    n = len(learners)
    step = 1 if live else next(p for p in (7919, 104729, 1299709) if n % p)  # a permutation of the learners
    for k in range(n):
        user = learners[(k * step) % n]
        for j in range(2):
            attempt = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            ts = _T0 + k * 1000 + j
            yield {
                "course_id": COURSE_ID,
                "batch_id": RESPONSE_BATCH,
                "user_id": user,
                "content_id": contents[(j + (0 if live else 2)) % len(contents)],
                "attempt_id": attempt,
                "created_on": ts,
                "updated_on": ts,
                "last_attempted_on": ts,
                "total_score": 5.0,
                "total_max_score": 10.0,
                "grand_total": "5.0/10.0",
                "question": [_question(rng, attempt, q, ts) for q in range(1, QUESTIONS + 1)],
            }


def progress_rows(config: ExhaustBenchConfig, learners: list[str]) -> Iterator[tuple[dict, dict, dict]]:
    """(users, user_enrolments, user_activity_agg) rows of each progress learner."""
    rng = random.Random(SEED + 3)
    contents = assessment_ids(config.assessments)
    leaves = contents + [f"do_exhaust_resource_{i}" for i in range(RESOURCES)]
    for i, user in enumerate(learners):
        aggregates: dict[str, float] = {"completedCount": float(rng.randint(0, len(leaves)))}
        for c in contents:
            aggregates |= {f"score:{c}": float(rng.randint(0, 10)), f"max_score:{c}": 10.0, f"attempts_count:{c}": 1.0}
        statuses = {leaf: rng.choice((1, 2, 2)) for leaf in leaves}
        done = all(s == 2 for s in statuses.values())
        user_row = dict(id=user, first_name=f"Learner {i}", root_org_id="org-1", status=1, state="Karnataka")
        user_row |= dict(district="Mysuru", org_name="Org One", board='["CBSE"]')
        enrolment = dict(userid=user, courseid=COURSE_ID, batchid=PROGRESS_BATCH, active=True, enrolled_date=_T0 + i)
        enrolment |= dict(status=2 if done else 1, contentstatus=statuses)
        if done:
            enrolment |= dict(completedon=_T0 + 10**8, issued_certificates=[{"name": "cert"}])
        row: dict[str, Any] = dict(activity_type="Course", activity_id=COURSE_ID, user_id=user)
        row["context_id"] = f"cb:{PROGRESS_BATCH}"
        row["aggregates"] = aggregates
        if i % 10 == 0:  # legacy integer scores, shadowed by aggregates
            row["agg"] = {f"score:{c}": rng.randint(0, 10) for c in contents[:3]}
        yield user_row, enrolment, row


# -- seeding ------------------------------------------------------------------------------------------------


def _insert_chunks(app: bootstrap.App, table: Any, rows: Iterable[dict]) -> None:
    """executemany in chunks; rows of one chunk are grouped by key set (a missing key stays SQL NULL)."""
    rows = iter(rows)
    while chunk := [row for _, row in zip(range(SEED_CHUNK), rows, strict=False)]:
        groups: dict[frozenset[str], list[dict]] = {}
        for row in chunk:
            groups.setdefault(frozenset(row), []).append(row)
        with app.store.write() as conn:
            for same_keys in groups.values():
                conn.execute(insert(table), same_keys)


def seed(app: bootstrap.App, config: ExhaustBenchConfig, archive_path: Path) -> None:
    """Load the course, both batches, their learners and rows; write the archived attempts to ``archive_path``."""
    tree = bench_course(config.assessments)
    with app.store.write() as conn:
        load_courses(conn, app.store.dialect, [(parse_hierarchy(tree), tree)], _T0)
        batches = [
            {"courseid": COURSE_ID, "batchid": b, "name": b, "status": 1} for b in (PROGRESS_BATCH, RESPONSE_BATCH)
        ]
        conn.execute(insert(course_batch), batches)
    learners = learner_ids(max(config.enrolments, config.response_learners))
    for index, table in enumerate((users_table, user_enrolments, user_activity_agg)):
        # Generated again for each table (deterministic): the seeding process stays small too.
        _insert_chunks(app, table, (rows[index] for rows in progress_rows(config, learners[: config.enrolments])))
    extra = learners[config.enrolments : config.response_learners]
    _insert_chunks(app, users_table, ({"id": u, "root_org_id": "org-1", "status": 1} for u in extra))
    responders = learners[: config.response_learners]
    enrolment = {"courseid": COURSE_ID, "batchid": RESPONSE_BATCH, "active": True, "enrolled_date": _T0, "status": 1}
    _insert_chunks(app, user_enrolments, ({"userid": u, **enrolment} for u in responders))
    contents = assessment_ids(config.assessments)
    _insert_chunks(app, assessment_aggregator, response_attempts(responders, contents, live=True))
    with archive_path.open("wb") as fh:
        for row in response_attempts(responders, contents, live=False):
            fh.write(orjson.dumps(row) + b"\n")


# -- timed runs (child processes) ---------------------------------------------------------------------------


def _status_mib(field: str) -> float:
    """VmRSS / VmHWM of this process from /proc (``ru_maxrss`` where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _archived(path: Path) -> Iterator[dict]:
    with path.open("rb") as fh:
        for line in fh:
            yield orjson.loads(line)


def run_report(database_url: str, report: str, archive_path: Path | None = None) -> ReportRun:
    """Build the app, write one report to a temporary file, and measure it (run in a fresh child process)."""
    from learnagg.batch.progress_exhaust import write_progress_report
    from learnagg.batch.response_exhaust import write_response_report

    app = bootstrap.build(load_settings(database_url=database_url))
    try:
        before = _status_mib("VmRSS")
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as out:
            started, cpu = time.perf_counter(), _cpu_seconds()
            if report == "progress":
                rows = write_progress_report(app, PROGRESS_BATCH, out)
            else:
                archived = _archived(archive_path) if archive_path else ()
                rows = write_response_report(app, RESPONSE_BATCH, out, archived=archived)
            out.flush()
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
            size = out.tell() / 2**20
        peak = _status_mib("VmHWM")
        return ReportRun(rows, round(seconds, 2), round(cpu, 2), round(size, 1), round(before, 1), round(peak, 1))
    finally:
        app.close()


def _timed(database_url: str, report: str, archive_path: Path | None = None) -> ReportRun:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_report, database_url, report, archive_path).result()


def run_exhaust_bench(config: ExhaustBenchConfig, progress: Progress | None = None) -> ExhaustBenchResult:
    """Run the exhaust benchmark (see the module docstring).

    Raises:
        InputError: for bad arguments.
        ConfigurationError: when the database cannot be created.
        LearnaggError: when a report does not write exactly the expected rows.
    """
    config.validate()
    say = (progress or NoProgress()).start  # one step per phase, nothing to count
    with (
        tempfile.TemporaryDirectory(prefix="learnagg-bench-") as folder,
        scratch_database(config.backend, folder, "bench_exhaust") as url,
    ):
        archive_path = Path(folder) / "archived.jsonl"
        app = bootstrap.build(load_settings(database_url=url))
        try:
            schema.upgrade(app.store)
            say(f"seeding {config.enrolments} enrolments and {config.question_rows} question rows (not timed)")
            started = time.perf_counter()
            seed(app, config, archive_path)
            pg_version = None
            if app.store.backend == "postgresql":
                with app.store.write() as conn:
                    conn.execute(text("ANALYZE"))
                    pg_version = str(conn.execute(text("SHOW server_version")).scalar_one())
            seed_seconds = time.perf_counter() - started
        finally:
            app.close()
        say("progress exhaust (child process)")
        prog = _timed(url, "progress")
        say("response exhaust (child process)")
        resp = _timed(url, "response", archive_path)
    expected = config.response_learners * ATTEMPTS_PER_LEARNER * QUESTIONS
    if prog.rows != config.enrolments or resp.rows != expected:
        raise LearnaggError(
            f"benchmark invalid: {prog.rows} progress rows (expected {config.enrolments}), "
            f"{resp.rows} response rows (expected {expected})"
        )
    return ExhaustBenchResult(
        backend=config.backend,
        enrolments=config.enrolments,
        assessments=config.assessments,
        progress=prog,
        question_rows=expected,
        archived_question_rows=expected // 2,
        response=resp,
        seed_seconds=round(seed_seconds, 1),
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        sqlite_version=sqlite3.sqlite_version,
        postgres_version=pg_version,
    )
