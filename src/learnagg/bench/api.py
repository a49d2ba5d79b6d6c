"""The API benchmark: latency and throughput of `/v1/group/activity/agg` served by uvicorn, with `/health` as floor.

Procedure (BENCHMARKS.md):
1. A fresh database (SQLite file in a temporary folder, or a database on a private durable PostgreSQL server),
   schema upgraded and seeded (not timed): for each scenario MxA, a group of M active members following one course
   of A SelfAssess leaves; every member has a name, an enrolment (30 % completed) and one course row holding
   ``score``/``max_score``/``attempts_count`` per assessment plus ``completedCount``, their times and the attempt
   history; every fifth member also has a legacy integer ``agg``.
2. The API runs as ``python -m uvicorn learnagg.entrypoints.api.app:from_environment --factory`` on a free
   loopback port (one process), with an HS256 secret so the driver can mint a member's token.
3. A separate driver process (so server and driver each get a core) runs C asyncio httpx clients with keep-alive
   for the warm-up and then the measured duration per scenario: `GET /health` first, then each group.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import insert, text

from learnagg.adapters.store import schema
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import group_member, groups, user_activity_agg, user_enrolments, users
from learnagg.adapters.tokens import TokenKeys
from learnagg.batch.progress import NoProgress, Progress
from learnagg.bench.api_load import Load, Measured, cpu_seconds, drive, serve, summarise
from learnagg.bench.common import check_backend, memory_gib, postgres_version, scratch_database
from learnagg.bench.redisserver import RedisServer
from learnagg.domain.hierarchy import COLLECTION_MIME_TYPE, parse_hierarchy
from learnagg.errors import InputError, LearnaggError
from learnagg.services.courses import load_courses
from learnagg.settings import AuthSettings

DEFAULT_GROUPS = ((100, 10), (1000, 20))
PATH = "/v1/group/activity/agg"
SEED = 11
_T0 = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class Target:
    """A scenario's bounds: p99, req/s (absolute, or a fraction of `GET /health`'s in the same run), ms/request."""

    p99_ms: float | None = None
    min_req_per_s: float | None = None
    ms_per_request: float | None = None
    health_ratio: float | None = None

    def met(self, result: ScenarioResult, health_req_per_s: float | None = None) -> bool:
        """Whether the measured figures meet every bound given (a ratio bound needs the `/health` rate)."""
        ratio = self.health_ratio
        return (
            (self.p99_ms is None or result.p99_ms <= self.p99_ms)
            and (self.min_req_per_s is None or result.req_per_s >= self.min_req_per_s)
            and (self.ms_per_request is None or result.ms_per_request <= self.ms_per_request)
            and (ratio is None or (health_req_per_s is not None and result.req_per_s >= ratio * health_req_per_s))
        )

    def describe(self) -> str:
        """The bounds as one line, e.g. ``>= 0.6 x /health req/s``."""
        bounds = [("p99 <= {:g} ms", self.p99_ms), (">= {:g} req/s", self.min_req_per_s)]
        bounds += [(">= {:g} x /health req/s", self.health_ratio), ("<= {:g} ms/request", self.ms_per_request)]
        return ", ".join(text.format(value) for text, value in bounds if value is not None)


# The goals (BENCHMARKS.md): a small group near the framework's floor, a large one within 25 ms per request.
TARGETS = {(100, 10): Target(health_ratio=0.6), (1000, 20): Target(ms_per_request=25.0)}


@dataclass(frozen=True, slots=True)
class ApiBenchConfig:
    """What to run: backend, groups as (members, assessments), C clients, seconds of warm-up and measurement."""

    backend: str = "sqlite"
    groups: tuple[tuple[int, int], ...] = DEFAULT_GROUPS
    concurrency: int = 8
    duration: float = 10.0
    warmup: float = 2.0
    # Serve with the Redis group-aggregate cache on (a private redis-server): measures cache hits.
    cache: bool = False

    def validate(self) -> None:
        """Refuse arguments the benchmark cannot run with.

        Raises:
            InputError: with a one-line reason.
        """
        check_backend(self.backend)
        if not self.groups:
            raise InputError("give at least one --group MxA")
        for members, assessments in self.groups:
            if not (1 <= members <= 100_000 and 1 <= assessments <= 1000):
                raise InputError(f"--group {members}x{assessments}: members 1..100000, assessments 1..1000")
        if not 1 <= self.concurrency <= 256:
            raise InputError(f"--concurrency must be between 1 and 256, not {self.concurrency}")
        if not (0 < self.duration <= 3600 and 0 <= self.warmup <= 600):
            raise InputError("--duration must be in (0, 3600] and --warmup in [0, 600] seconds")


def parse_group(spec: str) -> tuple[int, int]:
    """``"100x10"`` → (100, 10).

    Raises:
        InputError: when the text is not ``<members>x<assessments>``.
    """
    members, sep, assessments = spec.lower().partition("x")
    if not sep or not members.strip().isdigit() or not assessments.strip().isdigit():
        raise InputError(f"--group must look like 100x10 (members x assessments), not {spec!r}")
    return int(members), int(assessments)


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """Measured figures of one scenario.

    ``ms_per_request`` is 1000 / req/s: the wall time the one server process spends per request under this load.
    ``server_cpu_ms_per_request`` is the server process's CPU time over the measured window per request.
    """

    name: str
    method: str
    path: str
    members: int
    assessments: int
    requests: int
    errors: int
    req_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ms_per_request: float
    response_bytes: int
    server_cpu_ms_per_request: float | None = None
    target: str | None = None
    target_met: bool | None = None


@dataclass(frozen=True, slots=True)
class ApiBenchResult:
    """Every scenario and the machine they ran on (the `--json` object, in this key order)."""

    backend: str
    concurrency: int
    duration_s: float
    warmup_s: float
    scenarios: list[ScenarioResult]
    cores: int | None
    memory_gib: float | None
    python: str
    sqlite_version: str
    postgres_version: str | None
    server: str = "uvicorn, 1 process"
    cache: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


# -- seeding (not timed) -------------------------------------------------------------------------------------


def course_id(members: int, assessments: int) -> str:
    """The course a scenario's group follows."""
    return f"do_bench_course_{members}x{assessments}"


def group_id(members: int, assessments: int) -> str:
    """The group of a scenario."""
    return f"g-bench-{members}x{assessments}"


def member_id(members: int, assessments: int, index: int) -> str:
    """A member of a scenario's group (ids sort in index order)."""
    return f"u-{members}x{assessments}-{index:06d}"


def _tree(course: str, assessments: int) -> dict[str, Any]:
    leaves = [
        {
            "identifier": f"{course}_a{i:03d}",
            "name": f"Assessment {i}",
            "mimeType": "application/vnd.ekstep.ecml-archive",
            "contentType": "SelfAssess",
        }
        for i in range(1, assessments + 1)
    ]
    return {"identifier": course, "name": f"Bench {course}", "mimeType": COLLECTION_MIME_TYPE, "children": leaves}


def seed_rows(members: int, assessments: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table for one scenario (pure: the same seed gives the same rows)."""
    course, group = course_id(members, assessments), group_id(members, assessments)
    leaves = [f"{course}_a{i:03d}" for i in range(1, assessments + 1)]
    out: dict[str, list[dict[str, Any]]] = {"users": [], "members": [], "rows": [], "enrolments": []}
    out["groups"] = [{"id": group, "name": group, "status": "active", "activities": [{"id": course, "type": "Course"}]}]
    for index in range(members):
        user = member_id(members, assessments, index)
        stamp = _T0 + index * 1000
        aggregates: dict[str, float] = {}
        details = []
        for leaf in leaves:
            score = round(rng.uniform(0, 10), 2)
            attempts = rng.randint(1, 3)
            aggregates |= {f"attempts_count:{leaf}": float(attempts), f"max_score:{leaf}": 10.0, f"score:{leaf}": score}
            entry = {"attempt_id": f"{user}-{leaf}", "content_id": leaf, "score": score, "max_score": 10.0}
            details.append(orjson.dumps({**entry, "last_attempted_on": stamp, "type": "attempt_metrics"}).decode())
        completed = rng.randint(0, assessments)
        aggregates["completedCount"] = float(completed)
        row = {
            "activity_type": "Course",
            "activity_id": course,
            "user_id": user,
            "context_id": f"cb:bench-batch-{members}x{assessments}",
            "aggregates": aggregates,
            "agg_last_updated": dict.fromkeys(aggregates, stamp),
            "agg_details": details,
            # Every fifth member also carries the legacy integer map (docs/reference/data-model.md#user-activity-agg):
            # agg is read, aggregates win.
            "agg": {"completedCount": completed, f"score:{leaves[0]}": 1} if index % 5 == 0 else None,
        }
        out["rows"].append(row)
        out["users"].append({"id": user, "first_name": f"Learner{index}", "last_name": "Bench", "status": 1})
        out["members"].append(
            {"group_id": group, "user_id": user, "role": "admin" if index == 0 else "member", "status": "active"}
        )
        out["enrolments"].append(
            {"userid": user, "courseid": course, "batchid": "b", "status": 2 if rng.random() < 0.3 else 1}
        )
    return out


def seed(url: str, config: ApiBenchConfig) -> None:
    """Create the schema and every scenario's rows."""
    store = Store(url)
    try:
        schema.upgrade(store)
        rng = random.Random(SEED)
        with store.write() as conn:
            trees = [_tree(course_id(m, a), a) for m, a in config.groups]
            load_courses(conn, store.dialect, [(parse_hierarchy(t), t) for t in trees], _T0)
            for members, assessments in config.groups:
                rows = seed_rows(members, assessments, rng)
                for table, key in ((groups, "groups"), (users, "users"), (group_member, "members")):
                    conn.execute(insert(table), rows[key])
                conn.execute(insert(user_enrolments), rows["enrolments"])
                with_agg = [r for r in rows["rows"] if r["agg"] is not None]
                without = [{k: v for k, v in r.items() if k != "agg"} for r in rows["rows"] if r["agg"] is None]
                for batch in (with_agg, without):
                    if batch:
                        conn.execute(insert(user_activity_agg), batch)
        if store.backend == "postgresql":
            with store.write() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        store.dispose()


# -- databases and the server --------------------------------------------------------------------------------


@contextmanager
def _database(backend: str) -> Iterator[tuple[str, str | None]]:
    """A fresh database URL and, on PostgreSQL, the server version."""
    with tempfile.TemporaryDirectory(prefix="learnagg-bench-api-") as d, scratch_database(backend, d, "bench_api") as u:
        store = Store(u)
        try:
            version = postgres_version(store)
        finally:
            store.dispose()
        yield u, version


# -- the run -------------------------------------------------------------------------------------------------


def _scenario(
    name: str, load: Load, members: int, assessments: int, measured: Measured, health_req_per_s: float | None = None
) -> ScenarioResult:
    result = ScenarioResult(name, load.method, load.path, members, assessments, **summarise(measured))  # type: ignore[arg-type]
    if (target := TARGETS.get((members, assessments)) if load.path == PATH else None) is None:
        return result
    return replace(result, target=target.describe(), target_met=target.met(result, health_req_per_s))


def _check(base: str, load: Load, members: int) -> None:
    """One request before timing: the route must answer every member (a wrong set-up would measure errors)."""
    response = httpx.post(f"{base}{load.path}", content=load.body, headers=load.headers, timeout=120.0)
    answered = response.json().get("result", {}).get("members") if response.status_code == 200 else None
    if not isinstance(answered, list) or len(answered) != members:
        raise LearnaggError(f"benchmark invalid: {load.path} answered {response.status_code}: {response.text[:200]}")


def _server_cpu(pid: int, config: ApiBenchConfig) -> float | None:
    """The server's CPU seconds over the measured window (sampled from here while the driver runs)."""
    time.sleep(config.warmup)
    before = cpu_seconds(pid)
    time.sleep(config.duration)
    after = cpu_seconds(pid)
    return None if before is None or after is None else after - before


def _plan(config: ApiBenchConfig, keys: TokenKeys) -> list[tuple[str, Load, int, int]]:
    """`GET /health`, then one `/v1/group/activity/agg` load per group, as a member of that group."""
    c, w, d = config.concurrency, config.warmup, config.duration
    plan = [("health", Load("GET", "/health", None, {}, c, w, d), 0, 0)]
    for members, assessments in config.groups:
        token = keys.mint(member_id(members, assessments, 1), int(time.time() * 1000))
        request = {
            "groupId": group_id(members, assessments),
            "activityId": course_id(members, assessments),
            "activityType": "Course",
        }
        headers = {"x-authenticated-user-token": token, "content-type": "application/json"}
        load = Load("POST", PATH, orjson.dumps({"request": request}), headers, c, w, d)
        plan.append((f"group {members}x{assessments}", load, members, assessments))
    return plan


def run_api_bench(config: ApiBenchConfig, progress: Progress | None = None) -> ApiBenchResult:
    """Run the API benchmark (see the module docstring).

    Args:
        config: the arguments (validated here).
        progress: told each phase as a step, a short line (e.g. to print on stderr).

    Raises:
        InputError: for bad arguments.
        ConfigurationError: when the database cannot be created.
        LearnaggError: when the server does not start or a scenario has no successful request.
    """
    config.validate()
    say = (progress or NoProgress()).start  # one step per phase, nothing to count
    secret = secrets.token_hex(32)
    scenarios: list[ScenarioResult] = []
    with (
        contextlib.ExitStack() as stack,
        _database(config.backend) as (url, pg_version),
        tempfile.TemporaryDirectory() as workdir,
    ):
        sizes = ", ".join(f"{m}x{a}" for m, a in config.groups)
        say(f"seeding groups {sizes} (members x assessments) on {config.backend} (not timed)")
        seed(url, config)
        keys = TokenKeys(AuthSettings(hs256_secret=secret))
        # The driver runs in a process of its own (spawned: no copy of this process's state) so the server and the
        # clients each get a core.
        redis_server = RedisServer().start() if config.cache else None
        extra_env = (
            {"LEARNAGG_REDIS_URL": redis_server.url(), "LEARNAGG_GROUP_AGG__CACHE__ENABLED": "true"}
            if redis_server
            else {}
        )
        server = serve(url, secret, Path(workdir), extra_env)
        stack.callback(lambda: redis_server.stop() if redis_server else None)
        with server as (base, pid), ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            pool.submit(time.sleep, 0).result()  # start the driver process before any clock runs
            for name, load, members, assessments in _plan(config, keys):
                if members:
                    _check(base, load, members)
                say(f"{name}: {config.concurrency} clients, {config.warmup:g} s warm-up + {config.duration:g} s")
                job = pool.submit(drive, base, load)
                cpu = _server_cpu(pid, config)
                measured = job.result()
                if not measured.latencies or measured.errors == len(measured.latencies):
                    raise LearnaggError(f"benchmark invalid: no successful {load.method} {load.path} was measured")
                health = scenarios[0].req_per_s if scenarios else None  # `GET /health` runs first
                result = _scenario(name, load, members, assessments, measured, health)
                per_request = round(cpu * 1000 / result.requests, 2) if cpu is not None else None
                scenarios.append(replace(result, server_cpu_ms_per_request=per_request))
    return ApiBenchResult(
        backend=config.backend,
        concurrency=config.concurrency,
        duration_s=config.duration,
        warmup_s=config.warmup,
        scenarios=scenarios,
        cores=os.cpu_count(),
        memory_gib=memory_gib(),
        python=platform.python_version(),
        sqlite_version=sqlite3.sqlite_version,
        postgres_version=pg_version,
        server="uvicorn, 1 process, Redis group cache" if config.cache else "uvicorn, 1 process",
        cache=config.cache,
    )
