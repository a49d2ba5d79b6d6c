"""The `learnagg worker` processes of the scaling benchmark: started with their settings in the environment,
watched, checked for an even share of the partitions (docs/scale-out.md), and stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, select

from learnagg.adapters.store.tables import consumer_member, consumer_offset
from learnagg.bench.ingest import JOB
from learnagg.errors import LearnaggError

IDLE_POLL_S = 0.05  # the workers' poll interval on an empty topic: they see the published events this soon


def worker_env(database_url: str, bus_url: str, batch_size: int) -> dict[str, str]:
    """This process's environment plus the workers' database, bus, batch size and a short idle poll."""
    env = dict(os.environ)
    env.update(
        LEARNAGG_DATABASE_URL=database_url,
        LEARNAGG_BUS_URL=bus_url,
        LEARNAGG_WORKER__BATCH_SIZE=str(batch_size),
        LEARNAGG_WORKER__POLL_INTERVAL=str(IDLE_POLL_S),
    )
    return env


@contextmanager
def running_workers(
    count: int, env: dict[str, str], folder: Path, profile: Path | None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` worker processes running the assessment aggregator; killed if still running when the block ends."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            command = [sys.executable]
            if profile is not None:
                command += ["-m", "cProfile", "-o", str(profile / f"worker-{index}.prof")]
            command += ["-m", "learnagg", "worker", "--job", JOB]
            with (folder / f"worker-{index}.out").open("wb") as out, (folder / f"worker-{index}.err").open("wb") as err:
                procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def worker_failed(folder: Path, index: int, why: str) -> LearnaggError:
    """The error that ends the benchmark, with the last line the worker wrote on stderr."""
    lines = (folder / f"worker-{index}.err").read_text(errors="replace").strip().splitlines()
    return LearnaggError(f"benchmark invalid: worker {index} {why}: {lines[-1] if lines else 'no output'}")


def check_alive(procs: Sequence[subprocess.Popen[bytes]], folder: Path) -> None:
    """Raise :func:`worker_failed` for the first worker that has exited."""
    for index, proc in enumerate(procs):
        if proc.poll() is not None:
            raise worker_failed(folder, index, f"exited with status {proc.returncode}")


def balanced(conn: Connection, topic: str, partitions: int, count: int) -> bool:
    """Whether ``count`` live workers hold every partition as their even shares name (docs/scale-out.md)."""
    members = sorted(conn.execute(select(consumer_member.c.owner).where(consumer_member.c.consumer == JOB)).scalars())
    if len(members) != count:
        return False
    c = consumer_offset.c
    owners = {p: o for p, o in conn.execute(select(c.partition, c.owner).where(c.consumer == JOB, c.topic == topic))}
    return all(owners.get(p) == members[p % count] for p in range(partitions))


def stop_workers(procs: Sequence[subprocess.Popen[bytes]], folder: Path) -> list[Counter[str]]:
    """SIGTERM every worker (a clean stop), wait, and return each one's reported counters."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    out = []
    for index, proc in enumerate(procs):
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise worker_failed(folder, index, "did not stop within 60 s of SIGTERM") from None
        if code != 0:
            raise worker_failed(folder, index, f"exited with status {code}")
        report = json.loads((folder / f"worker-{index}.out").read_text())
        out.append(Counter(report["jobs"][JOB]))
    return out
