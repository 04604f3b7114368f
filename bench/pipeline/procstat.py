"""CPU time of process trees, read from /proc.

A tree's CPU is the sum, over its live processes, of utime + stime + cutime + cstime:
when a child exits, the kernel adds its own times (and its reaped children's) to the
parent's cutime/cstime, so work done by short-lived backends (PostgreSQL forks one per
connection, Celery's prefork pool) is still counted once the parent has reaped them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rsplit(")", 1)[1].split()
    # after the ')': state ppid ... ; utime is field 14 of the line, i.e. index 11 here
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def tree_cpu_seconds(root: int) -> float:
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents[int(entry.name)], cpu[int(entry.name)] = found
    if root not in cpu:
        return 0.0
    total = 0.0
    for pid, seconds in cpu.items():
        node = pid
        while node > 1:
            if node == root:
                total += seconds
                break
            node = parents.get(node, 0)
    return total


@dataclass
class CpuMeter:
    """CPU seconds per named process tree between `start()` and `stop()`."""

    roots: dict[str, Callable[[], int]]
    _before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(pid()) for name, pid in self.roots.items()}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.spent = {name: after[name] - self._before.get(name, 0.0) for name in after}
        return self.spent


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
