"""The deflate pool and pyarrow are sized to the CPUs the cgroup grants, not the node's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waybill_export_worker.conversion.cpus import usable_cpus

CORES = len(os.sched_getaffinity(0))


def _cgroup(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "50000 100000"}, 1),  # half a CPU still gets one thread
        ({"cpu.max": "100000 100000"}, 1),
        ({"cpu.max": "max 100000"}, CORES),  # no limit
        ({"cpu.max": "1000000000 100000"}, CORES),  # a quota above the cores: the cores
        ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, CORES),
        ({"cpu.max": "garbage"}, CORES),
        ({}, CORES),  # no cgroup files at all (bare metal, macOS)
    ],
)
def test_usable_cpus_follow_the_cgroup_quota(
    tmp_path: Path, files: dict[str, str], expected: int
) -> None:
    assert usable_cpus(_cgroup(tmp_path, files)) == expected
