"""Write -> read gives the same snapshot and the same bytes, in every archive format
(tgz is tar.gz under another name; bco.json holds no file: test_archive_formats.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tarfile
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest

from waybill_export_worker.conversion import deflate
from waybill_export_worker.conversion.archive import PIECE_BYTES
from waybill_export_worker.history_archive import (
    FORMATS as ALL_FORMATS,
)
from waybill_export_worker.history_archive import (
    ArchiveLimits,
    read_archive,
    write_archive,
)
from waybill_export_worker.history_archive.codec import DATASET_MEMBER, member_name
from waybill_export_worker.history_archive.writer import DatasetFileMismatch, InvalidSnapshot

FORMATS = [f for f in ALL_FORMATS if f not in ("bco.json", "tgz")]


def members(path: Path) -> list[str]:
    """The members, named as in the layout (a bag's payload without its directory)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    else:
        with tarfile.open(path) as t:
            names = t.getnames()
    return [n.split("/data/", 1)[1] if "/data/" in n else n for n in names]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_same_snapshot_and_bytes(tmp_path: Path, built: Any, fmt: str) -> None:
    target = tmp_path / f"history.{fmt}"
    summary = write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
    sizes = [d.file.size for d in built.snapshot.datasets]
    assert (summary.files, summary.bytes) == (6, sum(sizes))
    assert summary.members == len(members(target))
    with read_archive(target) as opened:
        assert opened.format == fmt
        assert opened.snapshot == built.snapshot
        for d in built.snapshot.datasets:
            out = tmp_path / f"out-{d.id}"
            assert opened.extract_dataset(d.id, out)
            assert out.read_bytes() == built.files[d.id].read_bytes()
        assert not opened.extract_dataset(999, tmp_path / "nothing")
    by_id = {d.id: d for d in opened.snapshot.datasets}
    assert (by_id[102].visible, by_id[102].deleted) == (False, False)
    assert (by_id[104].visible, by_id[104].deleted) == (True, True)
    hidden_deleted = opened.snapshot.collections[1]
    assert (hidden_deleted.visible, hidden_deleted.deleted) == (False, True)
    assert hidden_deleted.elements[0].elements[1].dataset_id == 106
    assert opened.snapshot.jobs[0].inputs[1].src == "dce"


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_files(tmp_path: Path, builder: Any, fmt: str) -> None:
    built = builder(include_files=False)
    target = tmp_path / f"history.{fmt}"
    summary = write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
    assert (summary.files, summary.bytes) == (0, 0)
    assert not [m for m in members(target) if m.startswith("datasets/")]
    with read_archive(target) as opened:
        assert opened.snapshot == built.snapshot
        assert opened.snapshot.include_files is False
        assert not opened.extract_dataset(101, tmp_path / "x")
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_some_files_missing_are_recorded(tmp_path: Path, built: Any, fmt: str) -> None:
    """dataset_file answering None for one dataset (purged, say) leaves just that one out."""
    target = tmp_path / f"history.{fmt}"
    write_archive(
        built.snapshot,
        fmt=fmt,  # type: ignore[arg-type]
        target=target,
        dataset_file=lambda d: None if d.id == 103 else built.files[d.id],
    )
    with read_archive(target) as opened:
        assert sorted(opened.files) == [101, 102, 104, 105, 106]
        assert not opened.extract_dataset(103, tmp_path / "x")


def test_member_names_are_safe_and_unique(built: Any) -> None:
    names = [member_name(d) for d in built.snapshot.datasets]
    assert len(set(names)) == len(names)
    for name in names:
        assert DATASET_MEMBER.fullmatch(name), name
        assert ".." not in name.split("/") and name.count("/") == 1
    assert names[0] == "datasets/101_forward.fastq.fastqsanger"
    assert names[1] == "datasets/102_reverse.txt"
    assert names[3] == "datasets/104_empty_name.txt"
    record = dataclasses.replace(built.snapshot.datasets[0], name="\u00e9" * 500, extension="/")
    assert member_name(record) == "datasets/101_dataset"
    long = dataclasses.replace(built.snapshot.datasets[0], name="a" * 1000, extension="txt")
    assert len(member_name(long)) <= len("datasets/101_") + 200


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_is_deterministic(tmp_path: Path, built: Any, fmt: str) -> None:
    first, second = tmp_path / f"1.{fmt}", tmp_path / f"2.{fmt}"
    for target in (first, second):
        write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_not_matching_its_record_fails_the_export(
    tmp_path: Path, built: Any, fmt: str
) -> None:
    target = tmp_path / f"history.{fmt}"
    source = built.files[102]
    original = source.read_bytes()
    for changed in (b"X" + original[1:], original[:-1], original + b"extra"):
        source.write_bytes(changed)
        with pytest.raises(DatasetFileMismatch, match="dataset 102"):
            write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
        assert not target.exists(), "a failed export leaves no partial archive"


def test_invalid_snapshot_is_refused_before_writing(tmp_path: Path, built: Any) -> None:
    snapshot = built.snapshot
    twice = dataclasses.replace(snapshot, datasets=snapshot.datasets + snapshot.datasets[:1])
    bad_src = dataclasses.replace(
        snapshot,
        jobs=(dataclasses.replace(snapshot.jobs[0], outputs=(snapshot.jobs[0].inputs[1],)),),
    )
    for bad, message in ((twice, "dataset id 101 appears twice"), (bad_src, "output")):
        with pytest.raises(InvalidSnapshot, match=message):
            write_archive(
                bad, fmt="tar.gz", target=tmp_path / "x.tar.gz", dataset_file=built.dataset_file
            )
        assert not (tmp_path / "x.tar.gz").exists()
    with pytest.raises(ValueError, match="unknown archive format"):
        write_archive(snapshot, fmt="7z", target=tmp_path / "x", dataset_file=built.dataset_file)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", FORMATS)
def test_memory_stays_flat_with_a_large_file(tmp_path: Path, built: Any, fmt: str) -> None:
    """A 48 MiB dataset goes through write, open (verification) and extract with a
    Python heap that grows by a few MiB at most: nothing holds a whole file. A zip
    also holds the deflate pool's pieces in flight (up to 2 per worker and one more,
    each 1 MiB in and, for random data, ~1 MiB out): 6-12 MiB on two cores, by how
    the pool was scheduled."""
    big = tmp_path / "big"
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    with big.open("wb") as f:
        for i in range(48):
            chunk = block[i:] + block[:i]
            f.write(chunk)
            digest.update(chunk)
    record = dataclasses.replace(
        built.snapshot.datasets[0],
        file=dataclasses.replace(
            built.snapshot.datasets[0].file, sha256=digest.hexdigest(), size=big.stat().st_size
        ),
    )
    snapshot = dataclasses.replace(built.snapshot, datasets=(record,), collections=(), jobs=())
    target = tmp_path / f"big.{fmt}"
    tracemalloc.start()
    try:
        write_archive(snapshot, fmt=fmt, target=target, dataset_file=lambda d: big)  # type: ignore[arg-type]
        with read_archive(target, limits=ArchiveLimits(max_ratio=10**6)) as opened:
            assert opened.extract_dataset(record.id, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n{fmt}: 48 MiB file, Python heap peak {peak / 2**20:.1f} MiB")
    in_flight = (2 * deflate.WORKERS + 1) * 2 * PIECE_BYTES if fmt.endswith("zip") else 0
    assert peak < 6 * 1024 * 1024 + in_flight, f"peak {peak / 2**20:.1f} MiB"
    assert (tmp_path / "out").stat().st_size == big.stat().st_size


@pytest.mark.parametrize("fmt", FORMATS)
def test_after_file_can_delete_each_download_once_written(
    tmp_path: Path, built: Any, fmt: str
) -> None:
    """The worker downloads each file before it is archived; after_file lets it delete
    the copy right away, so disk use stays at one file, not the whole history."""
    originals = {i: p.read_bytes() for i, p in built.files.items()}
    seen: list[int] = []

    def after_file(record: Any, source: Path) -> None:
        seen.append(record.id)
        source.unlink()

    target = tmp_path / f"history.{fmt}"
    write_archive(
        built.snapshot,
        fmt=fmt,  # type: ignore[arg-type]
        target=target,
        dataset_file=built.dataset_file,
        after_file=after_file,
    )
    assert seen == [d.id for d in built.snapshot.datasets]
    with read_archive(target) as opened:
        for i, data in originals.items():
            assert opened.extract_dataset(i, tmp_path / "out")
            assert (tmp_path / "out").read_bytes() == data
