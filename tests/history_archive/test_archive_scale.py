"""A 1,000-dataset, 1,000-job history (with its files, a 1,000-element collection and
a mapped run) writes and reads back in well under a second or two per format."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from waybill_export_worker.history_archive import read_archive, write_archive
from waybill_export_worker.history_archive.model import (
    CollectionRecord,
    DatasetRecord,
    ElementRecord,
    FileRecord,
    HistoryRecord,
    HistorySnapshot,
    ImplicitCollectionJobsRecord,
    JobIO,
    JobRecord,
)

N = 1000
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def big_snapshot(tmp: Path) -> tuple[HistorySnapshot, dict[int, Path]]:
    files: dict[int, Path] = {}
    datasets = []
    for i in range(1, N + 1):
        data = f"chr1\t{i}\t{i + 100}\tfeature_{i}\n".encode() * 20
        path = tmp / f"d{i}"
        path.write_bytes(data)
        files[i] = path
        datasets.append(
            DatasetRecord(
                id=i,
                hid=i,
                name=f"sample {i}.bed",
                extension="bed",
                state="ok",
                visible=i % 10 != 0,
                deleted=i % 97 == 0,
                copied_from_id=None,
                creating_job_id=10_000 + i if i > 1 else None,
                file=FileRecord(hashlib.sha256(data).hexdigest(), len(data), "tabular", {"i": i}),
            )
        )
    jobs = tuple(
        JobRecord(
            id=10_000 + i,
            tool_id="toolshed.g2.bx.psu.edu/repos/iuc/bedtools/bedtools_sortbed/2.30.0",
            tool_version="2.30.0",
            parameters={"input": {"src": "hda", "id": i - 1}, "option": "-chrThenSizeA"},
            state="ok",
            implicit_collection_jobs_id=1 if i > 1 else None,
            inputs=(JobIO("input", "hda", i - 1),) if i > 1 else (),
            outputs=(JobIO("output", "hda", i),) if i > 1 else (),
            created_at=NOW,
        )
        for i in range(1, N + 1)
    )
    collection = CollectionRecord(
        id=1,
        hid=N + 1,
        name="all",
        collection_type="list",
        visible=True,
        deleted=False,
        copied_from_id=None,
        creating_job_id=None,
        implicit_collection_jobs_id=None,
        implicit_output_name=None,
        implicit_input_collections={},
        elements=tuple(
            ElementRecord(id=i, identifier=f"s{i}", dataset_id=i, child_collection_type=None)
            for i in range(1, N + 1)
        ),
    )
    snapshot = HistorySnapshot(
        history=HistoryRecord(1, "big", 1, NOW, NOW, "bob"),
        datasets=tuple(datasets),
        collections=(collection,),
        jobs=jobs,
        implicit_collection_jobs=(
            ImplicitCollectionJobsRecord(1, jobs[1].tool_id, [], tuple(j.id for j in jobs[1:])),
        ),
        exported_at=NOW,
        include_files=True,
    )
    return snapshot, files


@pytest.mark.parametrize("fmt", ["rocrate.zip", "tar.gz"])
def test_thousand_datasets_and_jobs(tmp_path: Path, fmt: str) -> None:
    snapshot, files = big_snapshot(tmp_path)
    target = tmp_path / f"big.{fmt}"
    started = time.perf_counter()
    summary = write_archive(snapshot, fmt=fmt, target=target, dataset_file=lambda d: files[d.id])  # type: ignore[arg-type]
    written = time.perf_counter()
    out = tmp_path / "out"
    with read_archive(target) as opened:
        opened_at = time.perf_counter()
        assert opened.snapshot == snapshot
        for d in snapshot.datasets:
            assert opened.extract_dataset(d.id, out)
    done = time.perf_counter()
    assert summary.files == N
    print(
        f"\n{fmt}: {N} datasets + {N} jobs, {target.stat().st_size / 1024:.0f} KiB: "
        f"write {written - started:.2f} s, open+verify {opened_at - written:.2f} s, "
        f"extract all {done - opened_at:.2f} s"
    )
    assert done - started < 15
