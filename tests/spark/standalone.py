"""A throwaway Spark standalone cluster (one master, one worker) from the PySpark installation, on loopback ports in
a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyspark

from learnagg.bench.pg_process import free_port


class StandaloneCluster:
    """``spark://127.0.0.1:<port>`` with one worker of one core; `stop` kills both processes and removes the folder."""

    def __init__(self) -> None:
        self.home = Path(pyspark.__file__).parent
        self.folder = Path(tempfile.mkdtemp(prefix="learnagg-spark-"))
        self.port, self.ui = free_port(), free_port()
        self.master = f"spark://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *args: str) -> None:
        env = {**os.environ, "SPARK_HOME": str(self.home), "SPARK_LOCAL_IP": "127.0.0.1"}
        env |= {"SPARK_LOG_DIR": str(self.folder), "SPARK_WORKER_DIR": str(self.folder / "work")}
        log = (self.folder / f"{name}.log").open("wb")
        command = [str(self.home / "bin" / "spark-class"), *args]
        # Its own process group: stop() kills the JVM and the launcher script together.
        self.processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True))

    def start(self, timeout: float = 90) -> StandaloneCluster:
        """Start the master and the worker; return once the worker is registered and alive."""
        master = ("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port))
        self._start("master", *master, "--webui-port", str(self.ui))
        worker = ("org.apache.spark.deploy.worker.Worker", self.master, "--host", "127.0.0.1", "--cores", "1")
        self._start("worker", *worker, "--memory", "1g", "--webui-port", str(free_port()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(w.get("state") == "ALIVE" for w in self._status().get("workers", [])):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("the Spark standalone worker did not register in time")

    def _status(self) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui}/json/", timeout=2) as answer:
                return json.load(answer)
        except OSError:
            return {}

    def log(self, name: str) -> str:
        """A process's log text (for failure messages)."""
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Kill the worker, then the master, and remove the folder."""
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
