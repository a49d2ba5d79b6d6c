"""`learnagg bench …`: measured figures (benchmarks, not timed tests)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from learnagg.bench.ingest import IngestBenchConfig, IngestBenchResult, run_ingest_bench
from learnagg.entrypoints.cli.common import echo_json
from learnagg.entrypoints.cli.progress import phase_lines
from learnagg.errors import InputError
from learnagg.settings import load_settings

if TYPE_CHECKING:  # the API benchmark (and httpx) load only when `bench api` runs
    from learnagg.bench.api import ApiBenchResult
    from learnagg.bench.ingest_scaling import ScalingBenchResult

app = typer.Typer(help="Benchmarks; record their figures in BENCHMARKS.md.", no_args_is_help=True)


@app.command("ingest")
def ingest(
    backend: Annotated[str, typer.Option("--backend", help="sqlite or postgres.")] = "sqlite",
    attempts: Annotated[int, typer.Option("--attempts", help="N: attempt events to aggregate.")] = 20_000,
    questions: Annotated[int, typer.Option("--questions", help="Q: ASSESS answers per attempt.")] = 10,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="B: events per worker transaction (default: LEARNAGG_WORKER__BATCH_SIZE)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL server to create (and drop) two scratch databases on, instead of a private server.",
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="Scaling run: db (embedded log), redis (a private redis-server) or db,redis."),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option("--workers", help="Scaling run: worker process counts W, e.g. 1,2,4 (PostgreSQL only)."),
    ] = None,
    profile_dir: Annotated[
        str | None,
        typer.Option("--profile-dir", help="Scaling run: write a cProfile file per worker process into this folder."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Attempts per second of the assessment aggregator, and the bare-write limit of the same rows.

    Publishes N attempts (Q answers each, N/4 learners x 4 contents) to a fresh database, then times the real
    worker draining them (batch size B).

    Then inserts exactly the rows the aggregator wrote into a second fresh database with plain INSERTs, B
    attempts per transaction, timed: the ratio of the two rates is the aggregator's share of the write limit.
    Then decodes and parses the same events into rows and writes them the same way into a third (parse + write),
    and prints both ratios and the aggregator's time per phase.

    SQLite runs in a temporary folder; PostgreSQL on a private durable server unless --database-url is given.

    With --bus or --workers (a scaling run, --backend postgres): for each bus and each W, W `learnagg worker`
    processes drain the N attempts from P=8 partitions of a fresh database; prints attempts/s per W and the ratio
    to the smallest W, with the CPU seconds of the workers, PostgreSQL and the rest of the machine.
    """
    if batch_size is None:
        batch_size = load_settings().worker.batch_size
    if bus is not None or workers is not None or profile_dir is not None:
        _scaling(backend, bus, workers, attempts, questions, batch_size, database_url, profile_dir, as_json)
        return
    config = IngestBenchConfig(backend, attempts, questions, batch_size, database_url)
    config.validate()
    result = run_ingest_bench(config, progress=phase_lines("bench"))
    if as_json:
        echo_json(result.to_json())
    else:
        Console().print(_table(result))


def _scaling(
    backend: str,
    bus: str | None,
    workers: str | None,
    attempts: int,
    questions: int,
    batch_size: int,
    database_url: str | None,
    profile_dir: str | None,
    as_json: bool,
) -> None:
    """`bench ingest --bus … --workers …`: the scaling run (learnagg.bench.ingest_scaling)."""
    from learnagg.bench.ingest_scaling import ScalingBenchConfig, parse_counts, parse_list, run_scaling_bench

    if backend != "postgres" or database_url is not None:
        raise InputError("--bus/--workers run on --backend postgres with a private server (no --database-url)")
    buses = tuple(parse_list("--bus", bus or "db"))
    counts = parse_counts(workers or "1,2,4")
    config = ScalingBenchConfig(buses, counts, attempts, questions, batch_size, profile_dir=profile_dir)
    config.validate()
    result = run_scaling_bench(config, progress=phase_lines("bench"))
    if as_json:
        echo_json(result.to_json())
    else:
        Console(width=None if sys.stdout.isatty() else 150).print(_scaling_table(result))


def _scaling_table(result: ScalingBenchResult) -> Table:
    """One row per (bus, W): attempts/s, ratio, seconds, CPU seconds per process group, WAL syncs."""
    table = Table(
        title=f"learnagg bench ingest: scaling (N={result.attempts}, Q={result.questions}, "
        f"B={result.batch_size}, P={result.partitions})",
        caption=f"{result.cores} cores, {result.memory_gib} GiB, Python {result.python}, "
        f"PostgreSQL {result.postgres_version}; workers, postgres, redis: CPU per attempt; others: the rest "
        "of the machine's busy CPU over the timed window",
    )
    names = ("bus", "W", "attempts/s", "ratio", "s", "workers", "postgres", "redis", "others", "WAL syncs")
    for name in names:
        table.add_column(name, justify="left" if name == "bus" else "right")
    per_attempt = 1e6 / result.attempts
    for r in result.runs:
        cpu = r.cpu_seconds
        table.add_row(
            r.bus,
            str(r.workers),
            f"{r.attempts_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.seconds:.2f}",
            f"{cpu.get('workers', 0) * per_attempt:,.0f} µs",
            f"{cpu.get('postgres', 0) * per_attempt:,.0f} µs",
            f"{cpu['redis'] * per_attempt:,.0f} µs" if "redis" in cpu else "",
            f"{cpu.get('others', 0) / r.seconds:.2f} cores",
            f"{r.wal_syncs:,}",
        )
    return table


def _table(r: IngestBenchResult) -> Table:
    table = Table(title=f"learnagg bench ingest ({r.backend})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for label, value in r.rows():
        table.add_row(label, value)
    return table


@app.command("api")
def api(
    backend: Annotated[str, typer.Option("--backend", help="sqlite or postgres.")] = "sqlite",
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="MxA: a group of M members following one course of A assessments (repeat)."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="C: concurrent keep-alive clients.")] = 8,
    duration: Annotated[float, typer.Option("--duration", help="Measured seconds per scenario.")] = 10.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Unmeasured seconds before each scenario.")] = 2.0,
    cache: Annotated[
        bool, typer.Option("--cache", help="Serve with the Redis group cache on (a private redis-server): hits.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Latency and req/s of POST /v1/group/activity/agg served by uvicorn, with GET /health as the floor.

    Seeds a fresh database (default groups 100x10 and 1000x20), starts the API as a uvicorn subprocess on a free
    loopback port, and drives each route with C asyncio httpx clients from a separate process.

    SQLite runs in a temporary folder; PostgreSQL on a private durable server.
    """
    from learnagg.bench.api import DEFAULT_GROUPS, ApiBenchConfig, parse_group, run_api_bench

    groups = tuple(parse_group(g) for g in group) if group else DEFAULT_GROUPS
    config = ApiBenchConfig(backend, groups, concurrency, duration, warmup, cache)
    result = run_api_bench(config, progress=phase_lines("bench"))
    if as_json:
        echo_json(result.to_json())
    else:
        # Ten columns: do not squeeze them into 80 when the output goes to a file or pipe.
        Console(width=None if sys.stdout.isatty() else 150).print(_api_table(result))


def _api_table(r: ApiBenchResult) -> Table:
    version = f"PostgreSQL {r.postgres_version}" if r.postgres_version else f"SQLite {r.sqlite_version}"
    table = Table(
        title=f"learnagg bench api ({r.backend}, {r.concurrency} clients, {r.duration_s:g} s each)",
        caption=f"{r.server}; {r.cores} cores, {r.memory_gib} GiB, Python {r.python}, {version}",
    )
    names = (
        "scenario",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "ms/request",
        "server CPU ms",
        "bytes",
        "target",
    )
    for name in names:
        table.add_column(name, justify="left" if name in ("scenario", "target") else "right")
    for s in r.scenarios:
        target = "" if s.target is None else f"{s.target}: {'met' if s.target_met else 'NOT met'}"
        table.add_row(
            f"{s.method} {s.path}" if s.name == "health" else s.name,
            f"{s.req_per_s:,.0f}",
            f"{s.p50_ms:.2f}",
            f"{s.p90_ms:.2f}",
            f"{s.p99_ms:.2f}",
            f"{s.max_ms:.2f}",
            f"{s.ms_per_request:.2f}",
            "" if s.server_cpu_ms_per_request is None else f"{s.server_cpu_ms_per_request:.2f}",
            f"{s.response_bytes:,}",
            target,
        )
    return table


ENGINE_HELP = "python: this benchmark; spark: the python and the spark engine on PostgreSQL (docs/spark.md)."


def _engines(engine: str) -> bool:
    if engine not in ("python", "spark"):
        raise InputError(f"--engine {engine!r}: use python or spark")
    return engine == "spark"


def _print_engines(result: dict[str, Any], as_json: bool) -> None:
    """The engine comparison: one row per job and engine."""
    if as_json:
        echo_json(result)
        return
    sizes = ", ".join(f"{k} {v:,}" for k, v in result["sizes"].items())
    table = Table(title=f"learnagg bench {result['benchmark']} --engine spark ({sizes})")
    for name in ("job", "engine", "rows", "seconds", "rows/s", "driver peak MiB", "driver JVM peak MiB"):
        table.add_column(name, justify="left" if name in ("job", "engine") else "right")
    for r in result["runs"]:
        jvm = f"{r['jvm_peak_mib']:,.0f}" if r["engine"] == "spark" else ""
        table.add_row(
            r["job"], r["engine"], f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rows_per_s']:,.0f}",
            f"{r['driver_peak_mib']:,.0f}", jvm,
        )  # fmt: skip
    Console().print(table)
    print(
        f"identical outputs: {result['identical']}; Spark {result['spark_master']} started in "
        f"{result['spark_start_seconds']} s (not timed); {result['cores']} cores, {result['memory_gib']} GiB, "
        f"PostgreSQL {result['postgres_version']}"
    )


@app.command("archive")
def archive(
    rows: Annotated[int, typer.Option("--rows", help="N: assessment_aggregator rows to archive and delete.")] = 100_000,
    backend: Annotated[str, typer.Option("--backend", help="sqlite or postgres.")] = "sqlite",
    questions: Annotated[int, typer.Option("--questions", help="Q: questions per attempt row.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "python",
) -> None:
    """Rows per second of `archive run` and of `archive delete` (verify + delete), and the peak memory of each.

    Inserts N rows (8 per learner, 2 courses x 2 batches, 26 weeks) into a fresh database, untimed; then times the
    archival of every week to a local folder and the verified deletion of every archived row.

    SQLite runs in a temporary folder; PostgreSQL on a private durable server.
    """
    from learnagg.bench.archive import ArchiveBenchConfig, run_archive_bench

    if _engines(engine):
        from learnagg.bench.spark_engine import run_archive_engines

        _print_engines(run_archive_engines(rows, questions, progress=phase_lines("bench")).to_json(), as_json)
        return
    config = ArchiveBenchConfig(backend, rows, questions)
    config.validate()
    result = run_archive_bench(config, progress=phase_lines("bench"))
    if as_json:
        echo_json(result.to_json())
        return
    version = f"PostgreSQL {result.postgres_version}" if result.postgres_version else f"SQLite {result.sqlite_version}"
    table = Table(title=f"learnagg bench archive ({result.backend})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for label, value in (
        ("rows (N) x questions (Q)", f"{result.rows:,} x {result.questions}"),
        ("learners, partitions, chunk rows", f"{result.learners:,}, {result.partitions}, {result.chunk_rows:,}"),
        (
            "archive",
            f"{result.archive_rows_per_s:,.0f} rows/s ({result.archive_seconds:.2f} s, {result.archive_mib} MiB)",
        ),
        ("verify + delete", f"{result.delete_rows_per_s:,.0f} rows/s ({result.delete_seconds:.2f} s)"),
        (
            "CPU of this process: archive, delete",
            f"{result.archive_cpu_seconds:.2f} s, {result.delete_cpu_seconds:.2f} s",
        ),
        (
            "RSS: before, archive peak, delete peak",
            f"{result.baseline_rss_mib} / {result.archive_peak_rss_mib} / {result.delete_peak_rss_mib} MiB",
        ),
        ("machine", f"{result.cores} cores, {result.memory_gib} GiB, Python {result.python}"),
        ("database", version),
    ):
        table.add_row(label, value)
    Console().print(table)


@app.command("exhaust")
def exhaust(
    backend: Annotated[str, typer.Option("--backend", help="sqlite or postgres.")] = "sqlite",
    enrolments: Annotated[int, typer.Option("--enrolments", help="E: learners of the progress batch.")] = 100_000,
    assessments: Annotated[int, typer.Option("--assessments", help="A: assessments of the course.")] = 20,
    question_rows: Annotated[
        int, typer.Option("--question-rows", help="R: question rows of the response batch, half archived.")
    ] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "python",
) -> None:
    """Time and peak RSS of the progress exhaust (E enrolments x A assessments) and the response exhaust (R rows).

    Seeds a fresh database with executemany (not timed), then runs each report in a fresh child process writing to
    a temporary file; half the response rows are live, half are passed as archived rows in shuffled order.
    SQLite runs in a temporary folder; PostgreSQL on a private durable server.
    """
    from learnagg.bench.exhaust import (
        PROGRESS_TARGET_S,
        RESPONSE_TARGET_S,
        RSS_TARGET_MIB,
        ExhaustBenchConfig,
        run_exhaust_bench,
    )

    if _engines(engine):
        from learnagg.bench.spark_engine import run_exhaust_engines

        result = run_exhaust_engines(enrolments, assessments, question_rows, progress=phase_lines("bench"))
        _print_engines(result.to_json(), as_json)
        return
    config = ExhaustBenchConfig(backend, enrolments, assessments, question_rows)
    config.validate()
    r = run_exhaust_bench(config, progress=phase_lines("bench"))
    if as_json:
        echo_json(r.to_json())
        return
    table = Table(title=f"learnagg bench exhaust ({r.backend})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    version = f"PostgreSQL {r.postgres_version}" if r.postgres_version else f"SQLite {r.sqlite_version}"
    met = {True: "met", False: "NOT met"}
    p, q = r.progress, r.response
    for label, value in (
        ("progress: enrolments x assessments", f"{r.enrolments:,} x {r.assessments}"),
        ("progress: time (CPU), peak RSS", f"{p.seconds:.2f} s ({p.cpu_seconds:.2f} s), {p.peak_rss_mib:,.0f} MiB"),
        ("progress: <= 10 s, <= 1 GiB", met[p.seconds <= PROGRESS_TARGET_S and p.peak_rss_mib <= RSS_TARGET_MIB]),
        ("response: question rows (archived)", f"{q.rows:,} ({r.archived_question_rows:,})"),
        ("response: time (CPU), peak RSS", f"{q.seconds:.2f} s ({q.cpu_seconds:.2f} s), {q.peak_rss_mib:,.0f} MiB"),
        ("response: <= 20 s, <= 1 GiB", met[q.seconds <= RESPONSE_TARGET_S and q.peak_rss_mib <= RSS_TARGET_MIB]),
        ("child RSS before the report", f"{p.rss_before_mib:,.0f} / {q.rss_before_mib:,.0f} MiB"),
        ("output", f"{p.output_mib:,.1f} + {q.output_mib:,.1f} MiB"),
        ("seeding (not timed)", f"{r.seed_seconds:.1f} s"),
        ("machine", f"{r.cores} cores, {r.memory_gib} GiB, Python {r.python}"),
        ("database", version),
    ):
        table.add_row(label, value)
    Console().print(table)
