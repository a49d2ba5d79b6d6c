"""`learnagg bench ingest --bus … --workers …`: argument checks, and the scaling run at tiny sizes."""

from __future__ import annotations

import pytest
from rich.console import Console

from learnagg.bench.ingest_scaling import (
    ScalingBenchConfig,
    ScalingBenchResult,
    ScalingRun,
    parse_counts,
    run_scaling_bench,
)
from learnagg.entrypoints.cli import main
from learnagg.entrypoints.cli.bench import _scaling_table
from learnagg.errors import InputError


def test_worker_counts_are_read_smallest_first_and_bad_lists_are_refused():
    assert parse_counts("4, 1,2,2") == (1, 2, 4)
    with pytest.raises(InputError, match="--workers"):
        parse_counts("1,two")
    with pytest.raises(InputError, match="--workers"):
        ScalingBenchConfig(workers=(9,), partitions=8).validate()
    with pytest.raises(InputError, match="unknown bus 'kafka'"):
        ScalingBenchConfig(buses=("kafka",)).validate()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "1,2"], "--backend postgres"),  # the default backend is SQLite
        (["--backend", "postgres", "--bus", "kafka"], "unknown bus 'kafka'"),
        (["--backend", "postgres", "--workers", "0"], "--workers must be between 1 and 8"),
        (["--backend", "postgres", "--workers", "2", "--database-url", "postgresql://x/y"], "private server"),
    ],
)
def test_bad_scaling_arguments_print_one_line_and_exit_non_zero(capsys, args, message):
    assert main(["bench", "ingest", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_two_worker_processes_drain_every_attempt_on_each_bus(monkeypatch, pg_server):
    # Short leases so that the second worker gets its share within a second (the rebalance is not timed).
    monkeypatch.setenv("LEARNAGG_WORKER__LEASE_SECONDS", "2")
    config = ScalingBenchConfig(("db", "redis"), (2,), attempts=40, questions=2, batch_size=10)
    result = run_scaling_bench(config, server=pg_server).to_json()
    assert (result["attempts"], result["partitions"]) == (40, 8)
    assert [(r["bus"], r["workers"]) for r in result["runs"]] == [("db", 2), ("redis", 2)]
    for run in result["runs"]:
        assert sum(run["handled_per_worker"]) == 40 and min(run["handled_per_worker"]) > 0
        assert run["attempts_per_s"] > 0 and run["ratio"] == 1.0
        assert {"workers", "postgres", "bench", "machine", "others"} <= set(run["cpu_seconds"])
        assert run["commits"] > 0 and run["wal_syncs"] >= 0  # the test server runs with fsync off
    assert "redis" in result["runs"][1]["cpu_seconds"] and "redis" not in result["runs"][0]["cpu_seconds"]
    table = _scaling_table(ScalingBenchResult(**{**result, "runs": [ScalingRun(**r) for r in result["runs"]]}))
    console = Console(width=200, record=True)
    console.print(table)
    rows = [line for line in console.export_text().splitlines() if line.startswith(("│ db ", "│ redis "))]
    assert len(rows) == 2 and all(" 2 │" in row and "1.00" in row for row in rows), rows
