"""Writing a snapshot in one of Galaxy's model store formats.

Three layouts in four containers:
- `rocrate.zip`: the RO-Crate layout (ro-crate-metadata.json, waybill-history.json);
- `tar.gz` = `tgz`, `tar`: the tar layout (one JSON member per kind of record);
- `bag.zip`, `bag.tar`, `bag.tgz`: a BagIt bag (RFC 8493) whose payload is the tar layout;
- `bco.json`: a BioCompute Object (IEEE 2791) describing the history; it holds no file.

Dataset and workflow bytes are streamed from the local files `dataset_file` and
`workflow_file` give (1 MiB at a time, hashed on the way: a dataset file that does not
match its record's size and sha256 fails the export instead of making an archive that
re-import would refuse). The output is deterministic for the same snapshot and files:
member order, timestamps (exported_at) and gzip header are fixed."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import IO, Any, Protocol, cast, get_args

from waybill_export_worker.conversion.archive import FastDeflateZipFile
from waybill_export_worker.conversion.deflate import ISAL_LEVEL
from waybill_export_worker.history_archive.bco import biocompute_object
from waybill_export_worker.history_archive.codec import (
    CRATE_MEMBER,
    FORMAT_VERSION,
    SNAPSHOT_MEMBER,
    TAR_MEMBERS,
    TAR_WORKFLOWS_MEMBER,
    InvalidSnapshot,
    check_snapshot,
    member_name,
    to_json,
    workflow_member,
)
from waybill_export_worker.history_archive.model import (
    DatasetRecord,
    HistorySnapshot,
    WorkflowRecord,
)
from waybill_export_worker.history_archive.rocrate import ArchivedFile, crate_metadata
from waybill_shared.contracts.messages import HistoryStoreFormat

CHUNK = 1024 * 1024
ArchiveFormat = HistoryStoreFormat  # Galaxy's ModelStoreFormat, as the contract names it
FORMATS: tuple[str, ...] = get_args(ArchiveFormat)
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
# Stored as they are in a zip: compressing them again only costs time.
_ALREADY_COMPRESSED = (
    ".gz", ".bgz", ".bz2", ".xz", ".zst", ".zip", ".xlsx", ".parquet", ".bam", ".cram",
    ".h5", ".hdf5", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".sqlite",
)  # fmt: skip

__all__ = [
    "CRATE_MEMBER",
    "FORMATS",
    "SNAPSHOT_MEMBER",
    "TAR_MEMBERS",
    "ArchiveFormat",
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
    fmt: ArchiveFormat,
    target: Path,
    dataset_file: Callable[[DatasetRecord], Path | None],
    after_file: Callable[[DatasetRecord, Path], None] | None = None,
    workflow_file: Callable[[WorkflowRecord], Path | None] | None = None,
) -> ArchiveSummary:
    """Write the archive to target (replaced if it exists; removed again if writing
    fails). dataset_file gives the local file holding a dataset's bytes, or None to
    leave it out (include_files=false, a purged dataset): the archive records that.
    workflow_file does the same for the history's extracted workflows (their .ga
    document). bco.json asks for neither: it describes, it holds no file.
    Raises InvalidSnapshot (duplicate ids, malformed element trees...) before writing
    anything, DatasetFileMismatch when a file does not match its record, and whatever
    dataset_file raises (a cancellation, say). after_file, when given, is called once a
    dataset's file is in the archive: to delete a downloaded copy, count progress."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown archive format {fmt!r}; expected one of {FORMATS}")
    check_snapshot(snapshot)
    try:
        if fmt == "bco.json":
            target.write_bytes(_dumps(biocompute_object(snapshot)))
            return ArchiveSummary(files=0, bytes=0, members=1)
        payload = _Payload(snapshot, dataset_file, after_file, workflow_file)
        with _container(fmt, target, snapshot) as sink:
            if fmt == "rocrate.zip":
                _write_crate(payload, sink)
            elif fmt.startswith("bag."):
                _write_bag(payload, sink)
            else:
                _write_tar_layout(payload, sink)
            members = sink.members
        return ArchiveSummary(files=len(payload.paths), bytes=payload.total, members=members)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


# --- containers --------------------------------------------------------------------------


class _Sink(Protocol):
    members: int

    def add_file(self, name: str, size: int, src: IO[bytes]) -> None: ...

    def add_bytes(self, name: str, payload: bytes) -> None: ...


ZipTime = tuple[int, int, int, int, int, int]


class _ZipSink:
    def __init__(self, archive: zipfile.ZipFile, date_time: ZipTime) -> None:
        self.archive = archive
        self.date_time = date_time
        self.members = 0

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.members += 1
        return info

    def add_file(self, name: str, size: int, src: IO[bytes]) -> None:
        info = self._info(name, not name.lower().endswith(_ALREADY_COMPRESSED))
        # The size up front lets zipfile decide on zip64 itself (past 2 GiB).
        info.file_size = size
        with self.archive.open(info, "w") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)

    def add_bytes(self, name: str, payload: bytes) -> None:
        self.archive.writestr(self._info(name, True), payload)


class _TarSink:
    def __init__(self, archive: tarfile.TarFile, mtime: int) -> None:
        self.archive = archive
        self.mtime = mtime
        self.members = 0

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self.mtime
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        self.members += 1
        return info

    def add_file(self, name: str, size: int, src: IO[bytes]) -> None:
        try:
            self.archive.addfile(self._info(name, size), src)
        except OSError as exc:  # tarfile: "unexpected end of data"
            raise _ShortFile from exc

    def add_bytes(self, name: str, payload: bytes) -> None:
        self.archive.addfile(self._info(name, len(payload)), io.BytesIO(payload))


class _ShortFile(Exception):
    """A file ended before the size its tar header announced."""


@contextlib.contextmanager
def _container(fmt: str, target: Path, snapshot: HistorySnapshot) -> Iterator[_Sink]:
    if fmt.endswith(".zip"):
        t = snapshot.exported_at.timetuple()
        date_time: ZipTime = (  # the zip format starts in 1980
            (1980, 1, 1, 0, 0, 0)
            if t.tm_year < 1980
            else (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
        )
        with FastDeflateZipFile(
            target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
        ) as archive:
            yield _ZipSink(archive, date_time)
        return
    mtime = max(int(snapshot.exported_at.timestamp()), 0)
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(target.open("wb"))
        compressed = fmt.endswith(("gz", "tgz"))
        stream = stack.enter_context(_gzip_writer(raw, mtime)) if compressed else raw
        tar = stack.enter_context(
            tarfile.TarFile(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK)
        )
        yield _TarSink(tar, mtime)


def _gzip_writer(raw: IO[bytes], mtime: int) -> gzip.GzipFile:
    """A gzip stream with a fixed header (no name, exported_at as mtime); ISA-L's
    igzip when present (several times faster than zlib at a similar ratio)."""
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - isal is a dependency of the worker
        return gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=mtime)
    gz: gzip.GzipFile = igzip.IGzipFile(
        filename="", mode="wb", compresslevel=ISAL_LEVEL, fileobj=raw, mtime=mtime
    )
    return gz


# --- the payload: dataset and workflow files, checked on the way -------------------------


class _CheckedReader(io.RawIOBase):
    """What a container reads a file through: counts and hashes the bytes, and stops
    one byte past the expected size (a longer file is a mismatch, not a longer member)."""

    def __init__(self, src: IO[bytes], size: int) -> None:
        self.src = src
        self.expected = size
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        room = self.expected + 1 - self.size
        data = self.src.read(room if n < 0 else min(n, room))
        self.size += len(data)
        self.digest.update(data)
        return data


@dataclass
class _Payload:
    """The files of the archive, written through `add_files`, and what they were."""

    snapshot: HistorySnapshot
    dataset_file: Callable[[DatasetRecord], Path | None]
    after_file: Callable[[DatasetRecord, Path], None] | None
    workflow_file: Callable[[WorkflowRecord], Path | None] | None
    paths: dict[int, str] = field(default_factory=dict)  # dataset id -> member
    workflows: dict[int, ArchivedFile] = field(default_factory=dict)  # workflow id -> file
    hashes: dict[str, str] = field(default_factory=dict)  # member -> sha256
    sizes: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def add_files(self, sink: _Sink, prefix: str = "") -> None:
        for record in self.snapshot.datasets:
            source = self.dataset_file(record)
            if source is None:
                continue
            name = member_name(record)
            sha256 = self._add(sink, prefix + name, source, record.file.size, record)
            self.paths[record.id] = name
            self.hashes[name], self.sizes[name] = sha256, record.file.size
            self.total += record.file.size
            if self.after_file is not None:
                self.after_file(record, source)
        for workflow in self.snapshot.workflows:
            source = self.workflow_file(workflow) if self.workflow_file else None
            if source is None:
                continue
            name, size = workflow_member(workflow), source.stat().st_size
            sha256 = self._add(sink, prefix + name, source, size, None)
            self.workflows[workflow.id] = ArchivedFile(name, size, sha256)
            self.hashes[name], self.sizes[name] = sha256, size

    @staticmethod
    def _add(sink: _Sink, name: str, source: Path, size: int, record: DatasetRecord | None) -> str:
        with source.open("rb") as src:
            reader = _CheckedReader(src, size)
            with contextlib.suppress(_ShortFile):  # reader.size tells how short
                sink.add_file(name, size, cast("IO[bytes]", reader))
            reader.read(1)  # a tar member takes `size` bytes: is there more?
        if record is not None:
            _check(record, reader.size, reader.digest.hexdigest())
        elif reader.size != size:
            raise ValueError(f"{source} changed while it was archived")
        return reader.digest.hexdigest()

    def add_bytes(self, sink: _Sink, name: str, payload: bytes, prefix: str = "") -> None:
        sink.add_bytes(prefix + name, payload)
        self.hashes[name] = hashlib.sha256(payload).hexdigest()
        self.sizes[name] = len(payload)


def _check(record: DatasetRecord, size: int, sha256: str) -> None:
    if size != record.file.size:
        raise DatasetFileMismatch(
            f"dataset {record.id}: its file has {'more than ' if size > record.file.size else ''}"
            f"{size} bytes, its record says {record.file.size}"
        )
    if sha256 != record.file.sha256:
        raise DatasetFileMismatch(f"dataset {record.id}: its file does not match its sha256")


def _dumps(document: Any) -> bytes:
    return json.dumps(document, indent=1, ensure_ascii=False).encode()


# --- layouts -------------------------------------------------------------------------------


def _write_crate(payload: _Payload, sink: _Sink) -> None:
    payload.add_files(sink)
    snapshot = payload.snapshot
    document = {
        "format_version": FORMAT_VERSION,
        "files": {str(k): v for k, v in payload.paths.items()},
        **to_json(snapshot),
    }
    payload.add_bytes(sink, SNAPSHOT_MEMBER, _dumps(document))
    crate = crate_metadata(
        snapshot,
        {i: ArchivedFile(m, payload.sizes[m], payload.hashes[m]) for i, m in payload.paths.items()},
        payload.workflows,
        SNAPSHOT_MEMBER,
    )
    payload.add_bytes(sink, CRATE_MEMBER, _dumps(crate))


def _write_tar_layout(payload: _Payload, sink: _Sink, prefix: str = "") -> None:
    payload.add_files(sink, prefix)
    data = to_json(payload.snapshot)
    parts: dict[str, Any] = {
        "history.json": {
            "format_version": FORMAT_VERSION,
            "history": data["history"],
            "exported_at": data["exported_at"],
            "include_files": data["include_files"],
        },
        "datasets.json": [{**d, "path": payload.paths.get(d["id"])} for d in data["datasets"]],
        "collections.json": data["collections"],
        "jobs.json": data["jobs"],
        "implicit_collection_jobs.json": data["implicit_collection_jobs"],
        TAR_WORKFLOWS_MEMBER: data["workflows"],
    }
    for name in (*TAR_MEMBERS, TAR_WORKFLOWS_MEMBER):
        payload.add_bytes(sink, name, _dumps(parts[name]), prefix)


def bag_name(snapshot: HistorySnapshot) -> str:
    """The bag's base directory, the one top-level directory of its serialization."""
    return f"history-{snapshot.history.id}"


def _write_bag(payload: _Payload, sink: _Sink) -> None:
    """RFC 8493: bagit.txt, the tar layout under data/, a sha256 manifest of every
    payload file, bag-info.txt (Payload-Oxum) and a sha256 manifest of the tag files."""
    base = bag_name(payload.snapshot) + "/"
    tags: dict[str, bytes] = {"bagit.txt": BAGIT_TXT}
    sink.add_bytes(base + "bagit.txt", BAGIT_TXT)
    _write_tar_layout(payload, sink, base + "data/")
    tags["manifest-sha256.txt"] = "".join(
        f"{sha256}  data/{name}\n" for name, sha256 in payload.hashes.items()
    ).encode()
    exported = payload.snapshot.exported_at
    if exported.tzinfo is not None:
        exported = exported.astimezone(UTC)
    tags["bag-info.txt"] = (
        f"Bag-Software-Agent: Waybill\n"
        f"Bagging-Date: {exported.date().isoformat()}\n"
        f"External-Description: Galaxy-style history {payload.snapshot.history.id} "
        f"({_one_line(payload.snapshot.history.name)})\n"
        f"Payload-Oxum: {sum(payload.sizes.values())}.{len(payload.sizes)}\n"
    ).encode()
    for name in ("manifest-sha256.txt", "bag-info.txt"):
        sink.add_bytes(base + name, tags[name])
    sink.add_bytes(
        base + "tagmanifest-sha256.txt",
        "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in tags.items()).encode(),
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
