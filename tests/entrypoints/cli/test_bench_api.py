"""`learnagg bench api`: argument checks, figures, and a tiny end-to-end run against a real uvicorn server."""

from __future__ import annotations

import json
import random

import pytest
from rich.console import Console

from learnagg.bench.api import ApiBenchConfig, ApiBenchResult, ScenarioResult, Target, parse_group, seed_rows
from learnagg.bench.api_load import Measured, percentile, summarise
from learnagg.entrypoints.cli import main
from learnagg.entrypoints.cli.bench import _api_table
from learnagg.errors import InputError


def test_parse_group() -> None:
    assert parse_group("100x10") == (100, 10)
    assert parse_group(" 5X2 ") == (5, 2)
    for bad in ("100", "x10", "ax2", "1.5x2"):
        with pytest.raises(InputError):
            parse_group(bad)


@pytest.mark.parametrize(
    "config",
    [
        ApiBenchConfig(backend="mysql"),
        ApiBenchConfig(groups=()),
        ApiBenchConfig(groups=((0, 10),)),
        ApiBenchConfig(concurrency=0),
        ApiBenchConfig(duration=0),
    ],
)
def test_bad_arguments_are_refused(config: ApiBenchConfig) -> None:
    with pytest.raises(InputError):
        config.validate()


def test_percentiles_and_rate() -> None:
    ordered = [i / 1000 for i in range(1, 101)]  # 1 ms … 100 ms
    assert percentile(ordered, 0.5) == 0.05 and percentile(ordered, 0.99) == 0.099 and percentile([], 0.5) == 0.0
    figures = summarise(Measured(latencies=ordered[::-1], errors=1, elapsed=2.0, response_bytes=10))
    assert figures == {
        "requests": 100,
        "errors": 1,
        "req_per_s": 50.0,
        "p50_ms": 50.0,
        "p90_ms": 90.0,
        "p99_ms": 99.0,
        "max_ms": 100.0,
        "ms_per_request": 20.0,
        "response_bytes": 10,
    }


def test_seed_rows_give_every_member_a_row_per_assessment() -> None:
    rows = seed_rows(4, 3, random.Random(1))
    assert len(rows["members"]) == len(rows["users"]) == len(rows["rows"]) == 4
    assert len(rows["rows"][1]["aggregates"]) == 3 * 3 + 1  # score, max_score, attempts_count per assessment
    assert rows["rows"][0]["agg"] is not None and rows["rows"][1]["agg"] is None  # every fifth has legacy agg


def test_tiny_run_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "api", "--group", "3x2", "--group", "100x10", "--concurrency", "2"]
    assert main([*args, "--duration", "0.5", "--warmup", "0.2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "sqlite" and result["cores"] >= 1
    names = [s["name"] for s in result["scenarios"]]
    assert names == ["health", "group 3x2", "group 100x10"]
    for scenario in result["scenarios"]:
        assert scenario["requests"] > 0 and scenario["errors"] == 0 and scenario["p50_ms"] > 0
        assert scenario["server_cpu_ms_per_request"] > 0
    health, small, spec_sized = result["scenarios"]
    assert health["target"] is None and small["target"] is None
    assert spec_sized["target"] == ">= 0.6 x /health req/s" and isinstance(spec_sized["target_met"], bool)
    assert spec_sized["response_bytes"] > small["response_bytes"] > 0


def test_table_shows_every_scenario() -> None:
    scenario = ScenarioResult(
        "group 100x10", "POST", "/v1/group/activity/agg", 100, 10, 10, 0, 900.0, 1, 2, 3, 4, 1.1, 5
    )
    result = ApiBenchResult("sqlite", 8, 1.0, 0.5, [scenario], 2, 1.0, "3.11", "3.40", None)
    console = Console(width=200, record=True)
    console.print(_api_table(result))
    text = console.export_text()
    assert "group 100x10" in text and "900" in text
    assert Target(p99_ms=15.0).met(scenario) and not Target(min_req_per_s=1000.0).met(scenario)
    assert Target(health_ratio=0.6).met(scenario, 1500.0) and not Target(health_ratio=0.6).met(scenario, 1501.0)
    assert not Target(health_ratio=0.6).met(scenario)  # no /health rate: not met
