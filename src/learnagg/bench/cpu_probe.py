"""Where the CPU went during a measured window: processes by pid (and a PostgreSQL server's whole process tree),
this process, and the whole machine, read from /proc (Linux)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is index 0), or None when gone."""
    try:
        return (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone or there is no /proc)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and of its live child processes (a PostgreSQL postmaster and its backends)."""
    total = process_cpu_seconds(root)
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != root:
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == root:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every core: not idle, not waiting for I/O) since boot."""
    try:
        line = (_PROC / "stat").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    ticks = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class CpuWindow:
    """CPU seconds of named process groups between :meth:`start` and :meth:`stop`.

    ``groups`` maps a name to pids; ``trees`` maps a name to a root pid whose children count too (re-read at both
    ends, so a child that exits inside the window loses what it used).
    """

    groups: Mapping[str, Iterable[int]]
    trees: Mapping[str, int] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        out = {name: sum(process_cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()}
        out.update({name: tree_cpu_seconds(root) for name, root in self.trees.items()})
        times = os.times()
        out["bench"] = times.user + times.system
        out["machine"] = machine_busy_seconds()
        return out

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        """Take the second reading; return CPU seconds per group, ``bench`` (this process), ``machine`` (all busy
        time) and ``others`` (the machine's busy time not used by any named group: other work on the machine)."""
        end = self._read()
        self.spent = {name: round(end[name] - self._start.get(name, 0.0), 2) for name in end}
        ours = sum(v for k, v in self.spent.items() if k != "machine")
        self.spent["others"] = round(max(0.0, self.spent["machine"] - ours), 2)
        return self.spent
