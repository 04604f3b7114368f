"""A history snapshot with every kind of record, and its files on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

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

NOW = datetime(2026, 11, 24, 12, 0, 5, 123456, tzinfo=UTC)


@dataclass
class Built:
    snapshot: HistorySnapshot
    files: dict[int, Path]

    def dataset_file(self, record: DatasetRecord) -> Path | None:
        return self.files.get(record.id) if self.snapshot.include_files else None


def file_record(data: bytes, fmt: str = "text", **metadata: object) -> FileRecord:
    return FileRecord(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), format=fmt, metadata=metadata
    )


def build_snapshot(tmp: Path, *, include_files: bool = True) -> Built:
    """Datasets 1-6 (one hidden, one deleted, one copied, an empty one, a binary one
    over 1 MiB, names meant to escape), a paired collection, a list:paired one made by
    a mapped run, jobs with hda, hdca and dce inputs, an implicit-collection-jobs group."""
    contents: dict[int, bytes] = {
        1: b"forward\tread\n" * 10,
        2: b"reverse\tread\n" * 10,
        3: "r\u00e9sum\u00e9\n".encode() * 3,
        4: b"",
        5: bytes(range(256)) * 5000 + b"tail",  # 1.2 MiB, not a multiple of the chunk
        6: b"copied\n",
    }
    names = {
        1: "forward.fastq",
        2: "../../reverse",
        3: "/etc/passwd",
        4: "empty\x00\nname",
        5: "C:\\windows\\binary \u00e9\u00e8 .bam",
        6: "copy of forward",
    }
    files: dict[int, Path] = {}
    datasets = []
    for i, data in contents.items():
        path = tmp / f"source-{i}"
        path.write_bytes(data)
        files[i] = path
        datasets.append(
            DatasetRecord(
                id=100 + i,
                hid=i,
                name=names[i],
                extension={1: "fastqsanger", 5: "bam"}.get(i, "txt"),
                state="ok" if i != 4 else "error",
                visible=i != 2,
                deleted=i == 4,
                copied_from_id=101 if i == 6 else None,
                creating_job_id={3: 201, 5: 202}.get(i),
                file=file_record(
                    data, "binary" if i == 5 else "text", columns=i, nested={"a": [1]}
                ),
            )
        )
    files = {100 + i: p for i, p in files.items()}
    pair = CollectionRecord(
        id=300,
        hid=7,
        name="my pair",
        collection_type="paired",
        visible=True,
        deleted=False,
        copied_from_id=None,
        creating_job_id=None,
        implicit_collection_jobs_id=None,
        implicit_output_name=None,
        implicit_input_collections={},
        elements=(
            ElementRecord(id=400, identifier="forward", dataset_id=101, child_collection_type=None),
            ElementRecord(id=401, identifier="reverse", dataset_id=102, child_collection_type=None),
        ),
    )
    nested = CollectionRecord(
        id=301,
        hid=8,
        name="list:paired out",
        collection_type="list:paired",
        visible=False,
        deleted=True,
        copied_from_id=299,
        creating_job_id=None,
        implicit_collection_jobs_id=500,
        implicit_output_name="out_file1",
        implicit_input_collections={"input1": 300},
        elements=(
            ElementRecord(
                id=402,
                identifier="sample1",
                dataset_id=None,
                child_collection_type="paired",
                elements=(
                    ElementRecord(
                        id=403, identifier="forward", dataset_id=103, child_collection_type=None
                    ),
                    ElementRecord(
                        id=404, identifier="reverse", dataset_id=106, child_collection_type=None
                    ),
                ),
            ),
            ElementRecord(
                id=405, identifier="sample2", dataset_id=None, child_collection_type="paired"
            ),
        ),
    )
    jobs = (
        JobRecord(
            id=201,
            tool_id="toolshed.g2.bx.psu.edu/repos/devteam/cat/cat1/1.0.0",
            tool_version="1.0.0",
            parameters={"input1": {"src": "hda", "id": 101}, "queries": [{"input2": 5}], "f": 1.5},
            state="ok",
            implicit_collection_jobs_id=500,
            inputs=(JobIO("input1", "hda", 101), JobIO("queries_0|input2", "dce", 401)),
            outputs=(JobIO("out_file1", "hda", 103),),
            created_at=NOW,
        ),
        JobRecord(
            id=202,
            tool_id="collection tool with spaces",
            tool_version=None,
            parameters={},
            state="error",
            implicit_collection_jobs_id=None,
            inputs=(JobIO("pairs", "hdca", 300), JobIO("sub", "dce", 402), JobIO("x", "hda", 9)),
            outputs=(JobIO("bam", "hda", 105), JobIO("list", "hdca", 301)),
            created_at=datetime(2026, 1, 2, 3, 4, 5),  # naive: taken as UTC
        ),
    )
    snapshot = HistorySnapshot(
        history=HistoryRecord(
            id=5,
            name="RNA-seq \u00e9 run",
            content_version=7,
            created_at=NOW,
            update_time=NOW,
            owner_name="alice",
        ),
        datasets=tuple(datasets),
        collections=(pair, nested),
        jobs=jobs,
        implicit_collection_jobs=(
            ImplicitCollectionJobsRecord(
                id=500,
                tool_id=jobs[0].tool_id,
                map_over=[{"name": "input1", "src": "hdca", "id": 300, "subcollection_type": None}],
                job_ids=(201,),
            ),
        ),
        exported_at=NOW,
        include_files=include_files,
    )
    return Built(snapshot, files)


@pytest.fixture
def built(tmp_path: Path) -> Built:
    return build_snapshot(tmp_path)


@pytest.fixture
def builder(tmp_path: Path) -> Callable[..., Built]:
    return lambda **kw: build_snapshot(tmp_path, **kw)
