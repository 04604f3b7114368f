"""Writing a snapshot as rocrate.zip or tar.gz. Dataset bytes are streamed from the
local files `dataset_file` gives (1 MiB at a time, hashed on the way: a file that does
not match its record's size and sha256 fails the export instead of making an archive
that re-import would refuse). The output is deterministic for the same snapshot and
files: member order, timestamps (exported_at) and gzip header are fixed."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from waybill_export_worker.conversion.archive import FastDeflateZipFile
from waybill_export_worker.conversion.deflate import ISAL_LEVEL
from waybill_export_worker.history_archive.codec import (
    CRATE_MEMBER,
    FORMAT_VERSION,
    SNAPSHOT_MEMBER,
    TAR_MEMBERS,
    InvalidSnapshot,
    check_snapshot,
    member_name,
    to_json,
)
from waybill_export_worker.history_archive.model import DatasetRecord, HistorySnapshot
from waybill_export_worker.history_archive.rocrate import crate_metadata

CHUNK = 1024 * 1024
FORMATS = ("rocrate.zip", "tar.gz")
# Stored as they are in the zip: compressing them again only costs time.
_ALREADY_COMPRESSED = (
    ".gz", ".bgz", ".bz2", ".xz", ".zst", ".zip", ".xlsx", ".parquet", ".bam", ".cram",
    ".h5", ".hdf5", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".sqlite",
)  # fmt: skip

__all__ = [
    "CRATE_MEMBER",
    "FORMATS",
    "SNAPSHOT_MEMBER",
    "TAR_MEMBERS",
    "ArchiveSummary",
    "DatasetFileMismatch",
    "InvalidSnapshot",
    "write_archive",
]


class DatasetFileMismatch(ValueError):
    """A dataset's file differs from its record (size or sha256)."""


@dataclass(frozen=True)
class ArchiveSummary:
    files: int  # dataset files included
    bytes: int  # their total size, uncompressed
    members: int  # members in the archive, metadata included


def write_archive(
    snapshot: HistorySnapshot,
    *,
    fmt: Literal["rocrate.zip", "tar.gz"],
    target: Path,
    dataset_file: Callable[[DatasetRecord], Path | None],
    after_file: Callable[[DatasetRecord, Path], None] | None = None,
) -> ArchiveSummary:
    """Write the archive to target (replaced if it exists; removed again if writing
    fails). dataset_file gives the local file holding a dataset's bytes, or None to
    leave it out (include_files=false, a purged dataset): the archive records that.
    Raises InvalidSnapshot (duplicate ids, malformed element trees...) before writing
    anything, DatasetFileMismatch when a file does not match its record, and whatever
    dataset_file raises (a cancellation, say). after_file, when given, is called once a
    dataset's file is in the archive: to delete a downloaded copy, count progress."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown archive format {fmt!r}; expected one of {FORMATS}")
    check_snapshot(snapshot)
    try:
        if fmt == "rocrate.zip":
            return _write_zip(snapshot, target, _dataset_files(snapshot, dataset_file, after_file))
        return _write_tar(snapshot, target, _dataset_files(snapshot, dataset_file, after_file))
    except BaseException:
        target.unlink(missing_ok=True)
        raise


DatasetFiles = Iterator[tuple[DatasetRecord, str, Path]]


def _dataset_files(
    snapshot: HistorySnapshot,
    dataset_file: Callable[[DatasetRecord], Path | None],
    after_file: Callable[[DatasetRecord, Path], None] | None,
) -> DatasetFiles:
    for record in snapshot.datasets:
        source = dataset_file(record)
        if source is not None:
            yield record, member_name(record), source
            # Back here once the caller has written that file.
            if after_file is not None:
                after_file(record, source)


def _copy_checked(record: DatasetRecord, src: IO[bytes], dst: IO[bytes]) -> int:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if size > record.file.size:
            break
        digest.update(chunk)
        dst.write(chunk)
    _check(record, size, digest.hexdigest())
    return size


def _check(record: DatasetRecord, size: int, sha256: str) -> None:
    if size != record.file.size:
        raise DatasetFileMismatch(
            f"dataset {record.id}: its file has {'more than ' if size > record.file.size else ''}"
            f"{size} bytes, its record says {record.file.size}"
        )
    if sha256 != record.file.sha256:
        raise DatasetFileMismatch(f"dataset {record.id}: its file does not match its sha256")


def _snapshot_document(snapshot: HistorySnapshot, paths: dict[int, str]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "files": {str(k): v for k, v in paths.items()},
        **to_json(snapshot),
    }


def _dumps(document: Any) -> bytes:
    return json.dumps(document, indent=1, ensure_ascii=False).encode()


def _write_zip(
    snapshot: HistorySnapshot,
    target: Path,
    dataset_files: DatasetFiles,
) -> ArchiveSummary:
    paths: dict[int, str] = {}
    total = 0
    date_time = _zip_time(snapshot)
    with FastDeflateZipFile(
        target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
    ) as archive:
        for record, name, source in dataset_files:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.external_attr = 0o100644 << 16
            info.compress_type = (
                zipfile.ZIP_STORED
                if name.lower().endswith(_ALREADY_COMPRESSED)
                else zipfile.ZIP_DEFLATED
            )
            # The size up front lets zipfile decide on zip64 itself (past 2 GiB).
            info.file_size = record.file.size
            with source.open("rb") as src, archive.open(info, "w") as dst:
                total += _copy_checked(record, src, dst)
            paths[record.id] = name
        for name, payload in (
            (SNAPSHOT_MEMBER, _dumps(_snapshot_document(snapshot, paths))),
            (CRATE_MEMBER, _dumps(crate_metadata(snapshot, paths, SNAPSHOT_MEMBER))),
        ):
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)
        members = len(archive.infolist())
    return ArchiveSummary(files=len(paths), bytes=total, members=members)


def _zip_time(snapshot: HistorySnapshot) -> tuple[int, int, int, int, int, int]:
    t = snapshot.exported_at.timetuple()
    if t.tm_year < 1980:  # the zip format starts in 1980
        return (1980, 1, 1, 0, 0, 0)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


@contextlib.contextmanager
def _gzip_writer(target: Path, mtime: int) -> Iterator[gzip.GzipFile]:
    """A gzip stream with a fixed header (no name, exported_at as mtime); ISA-L's
    igzip when present (several times faster than zlib at a similar ratio)."""
    with target.open("wb") as raw:
        try:
            from isal import igzip
        except ImportError:  # pragma: no cover - isal is a dependency of the worker
            gz: gzip.GzipFile = gzip.GzipFile(
                filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=mtime
            )
        else:
            gz = igzip.IGzipFile(
                filename="", mode="wb", compresslevel=ISAL_LEVEL, fileobj=raw, mtime=mtime
            )
        with gz:
            yield gz


class _CheckedReader(io.RawIOBase):
    """What tarfile.addfile reads a dataset through: hashes the bytes on the way."""

    def __init__(self, src: IO[bytes], record: DatasetRecord) -> None:
        self.src = src
        self.record = record
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.size += len(data)
        self.digest.update(data)
        if self.size > self.record.file.size:
            _check(self.record, self.size, "")
        return data


def _tar_info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info


def _write_tar(
    snapshot: HistorySnapshot,
    target: Path,
    dataset_files: DatasetFiles,
) -> ArchiveSummary:
    paths: dict[int, str] = {}
    total = 0
    mtime = max(int(snapshot.exported_at.timestamp()), 0)
    with (
        _gzip_writer(target, mtime) as gz,
        tarfile.TarFile(
            fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        ) as archive,
    ):
        for record, name, source in dataset_files:
            with source.open("rb") as src:
                reader = _CheckedReader(src, record)
                try:
                    archive.addfile(_tar_info(name, record.file.size, mtime), reader)
                except OSError as exc:  # tarfile: "unexpected end of data"
                    raise DatasetFileMismatch(
                        f"dataset {record.id}: its file is shorter than its record says "
                        f"({record.file.size} bytes)"
                    ) from exc
                if src.read(1):
                    _check(record, record.file.size + 1, "")
            _check(record, reader.size, reader.digest.hexdigest())
            paths[record.id] = name
            total += reader.size
        data = to_json(snapshot)
        parts: dict[str, Any] = {
            "history.json": {
                "format_version": FORMAT_VERSION,
                "history": data["history"],
                "exported_at": data["exported_at"],
                "include_files": data["include_files"],
            },
            "datasets.json": [{**d, "path": paths.get(d["id"])} for d in data["datasets"]],
            "collections.json": data["collections"],
            "jobs.json": data["jobs"],
            "implicit_collection_jobs.json": data["implicit_collection_jobs"],
        }
        for name in TAR_MEMBERS:
            payload = _dumps(parts[name])
            archive.addfile(_tar_info(name, len(payload), mtime), io.BytesIO(payload))
        members = len(paths) + len(TAR_MEMBERS)
    return ArchiveSummary(files=len(paths), bytes=total, members=members)
