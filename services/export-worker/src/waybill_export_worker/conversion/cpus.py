"""How many CPUs this process may use: in a container, the cgroup's CPU quota, not the
node's core count that os.cpu_count() reports (a pod limited to 2 CPUs on a 64-core node
would start 64 deflate threads and be throttled)."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The fewest of: the cores this process may be scheduled on, and the cgroup's quota
    (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limits = [cores or 1]
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        limits.append(max(1, math.ceil(quota)))
    return min(limits)


def _cgroup_quota(root: Path) -> float | None:
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _ratio(quota, period)
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        quota_us, period_us = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        if quota_us is not None and period_us is not None:
            return _ratio(quota_us, period_us)
    return None


def _ratio(quota: str, period: str) -> float | None:
    """None when unlimited ("max" in v2, -1 in v1) or unreadable."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cap_engine_threads() -> int:
    """Size pyarrow's thread pool to the quota; it counts the node's cores. polars
    (Rust's available_parallelism) and DuckDB read the cgroup quota themselves."""
    import pyarrow as pa

    cpus = usable_cpus()
    if pa.cpu_count() > cpus:
        pa.set_cpu_count(cpus)
    return cpus
