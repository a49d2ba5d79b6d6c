"""HTTP load for `learnagg bench api`: the API in a uvicorn subprocess, and C keep-alive asyncio httpx clients."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from learnagg.errors import LearnaggError

SERVER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Load:
    """One route to drive: method, path, body and headers; C clients for warm-up + duration seconds."""

    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    concurrency: int
    warmup: float
    duration: float


@dataclass(slots=True)
class Measured:
    """What the driver returns: latencies (seconds) of requests inside the measured window, errors, body size."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    response_bytes: int = 0


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0.0 for an empty list)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise(measured: Measured) -> dict[str, float | int]:
    """Percentiles in ms, the request rate and the server time per request (1000 / rate) of a measured window."""
    ordered = sorted(measured.latencies)
    rate = len(ordered) / measured.elapsed if measured.elapsed > 0 else 0.0
    return {
        "requests": len(ordered),
        "errors": measured.errors,
        "req_per_s": round(rate, 1),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p90_ms": round(percentile(ordered, 0.90) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 2),
        "ms_per_request": round(1000 / rate, 2) if rate else 0.0,
        "response_bytes": measured.response_bytes,
    }


async def _drive(base_url: str, load: Load) -> Measured:
    out = Measured()
    limits = httpx.Limits(max_connections=load.concurrency, max_keepalive_connections=load.concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0, headers=load.headers) as client:
        measure_from = time.perf_counter() + load.warmup
        stop_at = measure_from + load.duration

        async def client_loop() -> None:
            while (begin := time.perf_counter()) < stop_at:
                response = await client.request(load.method, load.path, content=load.body)
                end = time.perf_counter()
                # Only requests wholly inside the window count, so the rate is completions per measured second.
                if begin >= measure_from and end <= stop_at:
                    out.latencies.append(end - begin)
                    out.errors += response.status_code != 200
                out.response_bytes = len(response.content)

        await asyncio.gather(*(client_loop() for _ in range(load.concurrency)))
    out.elapsed = load.duration
    return out


def drive(base_url: str, load: Load) -> Measured:
    """Run the load against the server (call it in a process of its own so the server keeps its core)."""
    return asyncio.run(_drive(base_url, load))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(url: str, secret: str, workdir: Path, extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Run the API in a uvicorn subprocess until the block ends; yields its base URL and pid once `/health` answers.

    The server gets only the database URL and the HS256 secret from learnagg's settings (other ``LEARNAGG_*``
    variables are dropped, and it runs in ``workdir`` so no local ``learnagg.toml`` is read).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNAGG_")}
    env |= {"LEARNAGG_DATABASE_URL": url, "LEARNAGG_AUTH__HS256_SECRET": secret, **(extra_env or {})}
    command = [sys.executable, "-m", "uvicorn", "learnagg.entrypoints.api.app:from_environment", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise LearnaggError(f"the API server exited with code {proc.returncode}: {tail[0]}")
            try:
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LearnaggError(f"the API server did not answer /health within {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
