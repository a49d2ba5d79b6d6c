"""Metrics of real processes: `learnagg worker --metrics-port N`, and `serve --workers 2` summing its processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.entrypoints.cli.test_cli_flow import learnagg
from tests.entrypoints.cli.test_serve import free_port
from tests.support import FIXTURES

AGG = "assessment-aggregator"
CLI = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()"]


def _parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sample(text: str, name: str, **labels: str) -> float | None:
    return _parse(text).get((name, tuple(sorted(labels.items()))))


def _wait_for(check: Callable[[], bool], proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {what}: {proc.stdout.read() if proc.stdout else ''}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _init_with_events(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/metrics.db"
    assert learnagg("init", url=url).returncode == 0
    events = tmp_path / "assess.jsonl"
    golden = json.dumps(json.loads((FIXTURES / "golden-assess-event.json").read_text()))
    events.write_text(golden + "\nnot json\n")
    published = learnagg("publish", "assess", str(events), url=url)
    assert published.returncode == 0, published.stderr
    return url


def test_worker_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    url = _init_with_events(tmp_path)
    port = free_port()
    env = {**os.environ, "LEARNAGG_DATABASE_URL": url, "LEARNAGG_WORKER__POLL_INTERVAL": "0.1"}
    cmd = [*CLI, "worker", "--job", AGG, "--metrics-port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:

        def drained() -> bool:
            text = client.get("/metrics").text
            return _sample(text, "learnagg_job_lag_events", job=AGG, partition="0") == 0

        _wait_for(drained, proc, "the worker to drain the topic")
        text = client.get("/metrics").text
        assert _sample(text, "learnagg_job_events_total", job=AGG, counter="batch-success-count") == 1
        assert _sample(text, "learnagg_job_events_total", job=AGG, counter="failed-event-count") == 1
        assert _sample(text, "learnagg_job_events_total", job=AGG, counter="certificate-issue-event-count") == 1
        assert _sample(text, "learnagg_job_up", job=AGG) == 1
        # Two events in two partitions (bus.partitions 8 stored by init): one batch each.
        assert _sample(text, "learnagg_job_batch_seconds_count", job=AGG) == 2
        # Only the jobs this worker runs: the certificate job's lag belongs to whoever runs it.
        assert _sample(text, "learnagg_job_lag_events", job="certificate-pre-processor", partition="0") is None
    finally:
        client.close()
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"metrics on http://127.0.0.1:{port}/metrics" in out


def test_worker_metrics_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    url = _init_with_events(tmp_path)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = learnagg("worker", "--until-idle", "--metrics-port", str(port), url=url)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_with_two_workers_sums_metrics_over_its_processes(tmp_path: Path) -> None:
    url = _init_with_events(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"LEARNAGG_DATABASE_URL": url, "LEARNAGG_WORKER__POLL_INTERVAL": "0.1"}
    cmd = [*CLI, "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # A new connection per request, so both HTTP worker processes get some of them.
    try:

        def drained() -> bool:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            return _sample(text, "learnagg_job_events_total", job=AGG, counter="batch-success-count") == 1

        _wait_for(drained, proc, "the embedded jobs to handle the events", seconds=60)
        for _ in range(20):
            assert httpx.get(f"http://127.0.0.1:{port}/v1/course/batch/read/b-1", timeout=5).status_code == 401
        # Whichever process answers, it serves the sum: the job counters of the serve process and the requests
        # of both HTTP workers.
        for _ in range(6):
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert _sample(text, "learnagg_job_events_total", job=AGG, counter="batch-success-count") == 1
            assert _sample(text, "learnagg_job_events_total", job=AGG, counter="failed-event-count") == 1
            assert _sample(text, "learnagg_job_up", job=AGG) == 1
            assert _sample(text, "learnagg_job_lag_events", job=AGG, partition="0") == 0
            route = "/v1/course/batch/read/{batchId}"
            assert _sample(text, "learnagg_http_requests_total", route=route, status="401") == 20
            assert _sample(text, "learnagg_http_request_seconds_count", route=route) == 20
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
