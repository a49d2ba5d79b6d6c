"""The scaling benchmark: attempts/s of the assessment aggregator with W `learnagg worker` processes (BENCHMARKS.md).

For each bus (the embedded log, or Redis Streams on a private ``redis-server``) and each worker count W, in one run:
1. A fresh database on one private durable PostgreSQL server, schema upgraded, topics of P partitions, the
   benchmark's course loaded (as ``learnagg bench ingest``).
2. W real ``learnagg worker --job assessment-aggregator`` processes start on the empty topic and share its
   partitions through their leases (docs/scale-out.md "Many workers per job"); the run waits until every
   partition is held by the worker its even share names, so neither start-up nor rebalancing is timed.
3. The N attempt events are published in one transaction (one MULTI/EXEC on Redis), so they appear at once.
   The clock starts at that commit and stops when every partition's committed position reaches its last event;
   then the workers are stopped with SIGTERM and their counters checked (N applied, none failed).
The CPU seconds of the workers, the PostgreSQL server (all its processes), redis-server, this process and the
whole machine over the timed window, PostgreSQL's WAL syncs and commits, and samples of what the workers'
database sessions were doing (``pg_stat_activity``) say what limits the rate.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, func, select, text

from learnagg import bootstrap
from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.bus.redis_streams import RedisStreamsLog, encode_id, stream_name
from learnagg.adapters.store import schema
from learnagg.adapters.store.tables import assessment_aggregator, consumer_offset, event_log
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.common import check_range, memory_gib, postgres_version, private_postgres
from learnagg.bench.cpu_probe import CpuWindow
from learnagg.bench.ingest import JOB, bench_course, bench_events
from learnagg.bench.worker_processes import balanced, check_alive, running_workers, stop_workers, worker_env
from learnagg.domain.hierarchy import parse_hierarchy
from learnagg.domain.topics import partition_of
from learnagg.errors import ConfigurationError, InputError, LearnaggError
from learnagg.services.courses import load_courses
from learnagg.settings import load_settings

if TYPE_CHECKING:
    from learnagg.bench.pgserver import PostgresServer

BUSES = ("db", "redis")
POLL_S = 0.02  # how often the committed positions are read while the workers drain
SAMPLE_EVERY = 5  # one pg_stat_activity sample every this many polls
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 1800.0


@dataclass(frozen=True, slots=True)
class ScalingBenchConfig:
    """Buses, worker counts W, N attempts of Q questions, batch size B, P partitions; optional cProfile folder."""

    buses: tuple[str, ...] = ("db",)
    workers: tuple[int, ...] = (1, 2, 4)
    attempts: int = 20_000
    questions: int = 10
    batch_size: int = 500
    partitions: int = 8
    profile_dir: str | None = None

    def validate(self) -> None:
        """Refuse arguments the benchmark cannot run with (InputError, one line)."""
        for bus in self.buses:
            if bus not in BUSES:
                raise InputError(f"unknown bus {bus!r}: use db, redis or db,redis")
        if not self.buses or not self.workers:
            raise InputError("--bus and --workers need at least one value each")
        check_range("--attempts", self.attempts, 1, 10_000_000)
        check_range("--questions", self.questions, 1, 1000)
        check_range("--batch-size", self.batch_size, 1, 100_000)
        for count in self.workers:
            check_range("--workers", count, 1, self.partitions)


@dataclass(frozen=True, slots=True)
class ScalingRun:
    """One (bus, W) measurement; ``cpu_seconds`` per process group over the timed window."""

    bus: str
    workers: int
    attempts_per_s: float
    seconds: float
    ratio: float  # attempts_per_s / that of the smallest W on the same bus
    ready_seconds: float  # from starting the processes until every partition is held by its share's worker
    handled_per_worker: list[int]
    cpu_seconds: dict[str, float]
    wal_syncs: int  # WAL fsyncs from just before the publish until the workers stopped
    wal_mib: float  # WAL written in the timed window
    commits: int  # transactions committed in the database, publish to stop
    sessions: dict[str, float]  # share of pg_stat_activity samples of the workers' sessions, by state and wait


@dataclass(frozen=True, slots=True)
class ScalingBenchResult:
    """Every run and the machine it ran on (the `--json` object, in this key order)."""

    backend: str
    attempts: int
    questions: int
    batch_size: int
    partitions: int
    runs: list[ScalingRun]
    cores: int | None
    memory_gib: float | None
    python: str
    postgres_version: str | None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def parse_list(option: str, value: str) -> list[str]:
    """``a,b,c`` as its non-empty items; refuses an empty list."""
    items = [part.strip() for part in value.split(",") if part.strip()]
    if not items:
        raise InputError(f"{option} {value!r}: expected values separated by commas")
    return items


def parse_counts(value: str) -> tuple[int, ...]:
    """``--workers 1,2,4`` as numbers, smallest first (the ratios are to the smallest)."""
    try:
        return tuple(sorted({int(item) for item in parse_list("--workers", value)}))
    except ValueError:
        raise InputError(f"--workers {value!r}: expected worker counts separated by commas, e.g. 1,2,4") from None


# -- the events ---------------------------------------------------------------------------------------------


def _publish_at_once(app: bootstrap.App, topic: str, events: Sequence[tuple[str | None, str]]) -> None:
    """Make every event visible at one instant: one transaction on the embedded log, one MULTI/EXEC on Redis."""
    if isinstance(app.log, RedisStreamsLog):
        with app.store.write() as conn:
            count = app.log.partitions(conn, topic)
        pipe = app.log.client.pipeline(transaction=True)
        for key, payload in events:
            pipe.xadd(stream_name(topic, partition_of(key, payload, count)), {"key": key or "", "payload": payload})
        pipe.execute()
        return
    with app.store.write() as conn:
        app.log.append(conn, topic, events, app.clock())


def _last_positions(app: bootstrap.App, topic: str, partitions: int) -> dict[int, int]:
    """The position of each partition's last event: what the committed positions reach once it is drained."""
    if isinstance(app.log, RedisStreamsLog):
        out = {}
        for p in range(partitions):
            last: Any = app.log.client.xrevrange(stream_name(topic, p), count=1)
            if last:
                out[p] = encode_id(last[0][0])
        return out
    e = event_log.c
    stmt = select(e.partition, func.max(e.seq)).where(e.topic == topic).group_by(e.partition)
    with app.store.read() as conn:
        return {int(p): int(seq) for p, seq in conn.execute(stmt)}


_SESSIONS = text(
    "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)
_PG_COUNTERS = text(
    "SELECT (SELECT wal_sync FROM pg_stat_wal), "
    "(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())"
)
_WAL_LSN = text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")


def _session_label(state: str | None, wait_type: str | None, wait: str | None) -> str:
    if state == "active":
        return f"active, waiting {wait_type}:{wait}" if wait_type else "active (running in PostgreSQL)"
    return state or "unknown"


def _session_shares(samples: dict[int, Counter[str]]) -> dict[str, float]:
    """Share of the samples per label, leaving out sessions never seen outside ``idle`` (spare pooled
    connections): ``idle`` then means a worker between two transactions, ``idle in transaction`` a worker
    computing inside one."""
    total: Counter[str] = Counter()
    for labels in samples.values():
        if set(labels) != {"idle"}:
            total.update(labels)
    count = sum(total.values()) or 1
    return {label: round(n / count, 3) for label, n in total.most_common()}


def _drain(
    conn: Connection, topic: str, last: dict[int, int], procs: Sequence[Any], folder: Path
) -> dict[int, Counter[str]]:
    """Poll the committed positions until each partition reaches its last event; sample the workers' sessions."""
    c = consumer_offset.c
    positions = select(c.partition, c.seq).where(c.consumer == JOB, c.topic == topic)
    sessions: dict[int, Counter[str]] = {}
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    polls = 0
    while True:
        done = {p: s for p, s in conn.execute(positions)}
        conn.rollback()
        if all(done.get(p, 0) >= seq for p, seq in last.items()):
            return sessions
        polls += 1
        if polls % SAMPLE_EVERY == 0:
            for pid, *row in conn.execute(_SESSIONS):
                sessions.setdefault(pid, Counter())[_session_label(*row)] += 1
            conn.rollback()
            check_alive(procs, folder)
        if time.monotonic() > deadline:
            raise LearnaggError(f"benchmark invalid: the topic was not drained within {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def _pg_counters(conn: Connection) -> tuple[int, int]:
    row = conn.execute(_PG_COUNTERS).one()
    conn.rollback()
    return int(row[0] or 0), int(row[1] or 0)


def _wal_position(conn: Connection) -> int:
    position = int(conn.execute(_WAL_LSN).scalar_one())
    conn.rollback()
    return position


# -- the run ------------------------------------------------------------------------------------------------


def _prepare(url: str, bus_url: str, config: ScalingBenchConfig) -> bootstrap.App:
    settings = load_settings(database_url=url, bus_url=bus_url)
    app = bootstrap.build(settings)
    schema.upgrade(app.store)
    tree = bench_course(config.questions)
    with app.store.write() as conn:
        DatabaseLog(app.store.dialect).store_default_partitions(conn, config.partitions)
        load_courses(conn, app.store.dialect, [(parse_hierarchy(tree), tree)], app.clock())
    return app


def _measure(
    app: bootstrap.App,
    config: ScalingBenchConfig,
    count: int,
    events: Sequence[tuple[str | None, str]],
    trees: dict[str, int],
    folder: Path,
) -> tuple[float, float, list[Counter[str]], dict[str, float], tuple[int, int, int], dict[str, float]]:
    """Start ``count`` workers, wait for their shares, publish, time the drain, stop them."""
    topic = app.topics.assess
    env = worker_env(app.settings.database_url, app.settings.bus_url, config.batch_size)
    profile = None
    if config.profile_dir:  # one cProfile output per worker, in <dir>/<bus>-<W>/
        profile = Path(config.profile_dir) / f"{'redis' if app.settings.bus_url else 'db'}-{count}"
        profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with running_workers(count, env, folder, profile) as procs, app.store.engine.connect() as conn:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not balanced(conn, topic, config.partitions, count):
            conn.rollback()
            check_alive(procs, folder)
            if time.monotonic() > deadline:
                raise LearnaggError(f"benchmark invalid: {count} workers did not share the partitions in time")
            time.sleep(0.1)
        conn.rollback()
        ready = time.perf_counter() - started
        before = _pg_counters(conn)
        window = CpuWindow(groups={"workers": [p.pid for p in procs]}, trees=trees)
        _publish_at_once(app, topic, events)
        t0 = time.perf_counter()
        window.start()
        wal_start = _wal_position(conn)
        sessions = _drain(conn, topic, _last_positions(app, topic, config.partitions), procs, folder)
        seconds = time.perf_counter() - t0
        cpu = window.stop()
        wal_bytes = _wal_position(conn) - wal_start
        reports = stop_workers(procs, folder)
        after = _pg_counters(conn)
        stored = conn.execute(select(func.count()).select_from(assessment_aggregator)).scalar_one()
    if stored != config.attempts:
        raise LearnaggError(f"benchmark invalid: {stored} attempt rows stored for {config.attempts} attempts")
    pg = (after[0] - before[0], wal_bytes, after[1] - before[1])
    return seconds, ready, reports, cpu, pg, _session_shares(sessions)


@contextmanager
def _redis(needed: bool) -> Iterator[Any]:
    if not needed:
        yield None
        return
    from learnagg.bench.redisserver import RedisServer, RedisUnavailable

    try:
        server = RedisServer().start()
    except RedisUnavailable as exc:
        raise ConfigurationError(f"cannot start a private redis-server: {exc}") from exc
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _postgres(server: PostgresServer | None) -> Iterator[PostgresServer]:
    if server is not None:
        yield server
        return
    with private_postgres() as private:
        yield private


def run_scaling_bench(
    config: ScalingBenchConfig, progress: Progress | None = None, *, server: PostgresServer | None = None
) -> ScalingBenchResult:
    """Run the scaling benchmark (see the module docstring) on a private durable PostgreSQL server, or on
    ``server`` (a running one of this machine: its process tree is measured).

    Raises:
        InputError: for bad arguments.
        ConfigurationError: when PostgreSQL or redis-server cannot be started.
        LearnaggError: when the workers do not apply exactly the N attempts.
    """
    config.validate()
    say = (progress or NoProgress()).start
    say(f"generating {config.attempts} attempt events of {config.questions} answers (not timed)")
    events = [(None, orjson.dumps(event).decode()) for event in bench_events(config.attempts, config.questions)]
    runs: list[ScalingRun] = []
    pg_version = None
    with _postgres(server) as server, _redis("redis" in config.buses) as redis_server:
        trees = {"postgres": server.pid}
        for bus in config.buses:
            base: float | None = None
            for count in config.workers:
                url = server.create_database(f"bench_scaling_{bus}_{count}_{len(runs)}")
                bus_url = redis_server.url() if bus == "redis" else ""
                app = _prepare(url, bus_url, config)
                try:
                    if isinstance(app.log, RedisStreamsLog):
                        app.log.client.flushall()
                    say(f"{bus} bus, {count} worker(s): starting, then draining {config.attempts} attempts")
                    with tempfile.TemporaryDirectory(prefix="learnagg-bench-workers-") as folder:
                        if bus == "redis" and redis_server.process is not None:
                            trees["redis"] = redis_server.process.pid
                        seconds, ready, reports, cpu, pg, sessions = _measure(
                            app, config, count, events, trees, Path(folder)
                        )
                    pg_version = postgres_version(app.store)
                finally:
                    app.close()
                applied = sum(r["batch-success-count"] for r in reports)
                failed = sum(r["failed-event-count"] for r in reports)
                if applied != config.attempts or failed:
                    raise LearnaggError(f"benchmark invalid: the workers applied {applied}, failed {failed}")
                rate = config.attempts / seconds
                base = base or rate
                say(f"{bus} bus, {count} worker(s): {rate:,.0f} attempts/s ({rate / base:.2f} x)")
                runs.append(
                    ScalingRun(
                        bus=bus,
                        workers=count,
                        attempts_per_s=round(rate, 1),
                        seconds=round(seconds, 3),
                        ratio=round(rate / base, 3),
                        ready_seconds=round(ready, 2),
                        handled_per_worker=[r["batch-success-count"] for r in reports],
                        cpu_seconds=cpu,
                        wal_syncs=pg[0],
                        wal_mib=round(pg[1] / 2**20, 1),
                        commits=pg[2],
                        sessions=sessions,
                    )
                )
    return ScalingBenchResult(
        backend="postgres",
        attempts=config.attempts,
        questions=config.questions,
        batch_size=config.batch_size,
        partitions=config.partitions,
        runs=runs,
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        postgres_version=pg_version,
    )
