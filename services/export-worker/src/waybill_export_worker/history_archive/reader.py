"""Reading an archive back for re-import, refusing anything unsafe or inconsistent.

`read_archive` looks at every member before it answers: names (no absolute paths, no
'..', no control characters, nothing outside the layout, no duplicates), types (regular
files only: no links, devices, directories), sizes (member count, total expanded size,
compression ratio: a decompression bomb stops as soon as it shows), integrity (corrupt
or truncated archives, CRCs), the snapshot document (present, bounded, valid), and, by
default, every dataset file's size and sha256 against its record. Nothing is written to
disk: `extract_dataset` streams one file to a path the caller chooses, checking it again.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from pydantic import ValidationError

from waybill_export_worker.history_archive.codec import (
    CRATE_MEMBER,
    DATASET_MEMBER,
    DATASETS_DIR,
    FORMAT_VERSION,
    SNAPSHOT_MEMBER,
    TAR_MEMBERS,
    InvalidSnapshot,
    check_snapshot,
    from_json,
)
from waybill_export_worker.history_archive.model import DatasetRecord, HistorySnapshot

CHUNK = 1024 * 1024
ZIP_LAYOUT = frozenset({SNAPSHOT_MEMBER, CRATE_MEMBER})
TAR_LAYOUT = frozenset(TAR_MEMBERS)

try:  # ISA-L's igzip: the same gzip streams, decompressed several times faster
    from isal import igzip, isal_zlib

    _isal_error = cast("type[Exception]", isal_zlib.error)
except ImportError:  # pragma: no cover - isal is a dependency of the worker
    igzip = None  # type: ignore[assignment]
    _isal_error = zlib.error
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    _isal_error,
    NotImplementedError,
)


class UnsafeArchive(Exception):
    """The archive is refused; the message says why."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What an archive may expand to. The defaults fit any real history; tests and
    callers with tighter budgets pass their own."""

    max_total_bytes: int = 50 * 1024**3  # all members, expanded
    max_members: int = 200_000
    # Expanded / compressed size, for what expands past ratio_floor_bytes. Zip: per
    # member, from the central directory, before anything is decompressed. tar.gz (one
    # gzip stream): the running ratio of the stream, checked every MiB while reading.
    # Deflate tops out near 1032x, which real data can approach (a dense all-zero
    # matrix): the defaults only refuse what expands past 64 MiB at 1000x or more.
    # Callers re-importing from untrusted sources can go lower (100x, 1 MiB).
    max_ratio: float = 1000.0
    ratio_floor_bytes: int = 64 * 1024 * 1024
    max_metadata_bytes: int = 128 * 1024**2  # each JSON document
    verify_files: bool = True  # check every file's size and sha256 when opening


def check_member_name(name: str, layout: frozenset[str]) -> None:
    if not name:
        raise UnsafeArchive("a member has an empty name")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise UnsafeArchive(f"member {name!r} has control characters in its name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    if "\\" in name:
        raise UnsafeArchive(f"member {name!r} has a backslash (a Windows path)")
    if ".." in name.split("/"):
        raise UnsafeArchive(f"member {name!r} points outside the archive ('..')")
    if name not in layout and not (
        name.startswith(DATASETS_DIR) and DATASET_MEMBER.fullmatch(name)
    ):
        raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")


class OpenedArchive:
    """The snapshot of an archive that passed every check, and its dataset files.
    A context manager: closing it closes the archive."""

    def __init__(
        self,
        snapshot: HistorySnapshot,
        files: dict[int, str],
        open_member: Callable[[str], IO[bytes]],
        close: Callable[[], None],
        fmt: str,
    ) -> None:
        self.snapshot = snapshot
        self.format = fmt  # "rocrate.zip" or "tar.gz"
        self.files = files  # dataset id -> member, for the datasets whose file is included
        self._open_member = open_member
        self._close = close
        self._records = {d.id: d for d in snapshot.datasets}

    def has_file(self, dataset_id: int) -> bool:
        return dataset_id in self.files

    def extract_dataset(self, dataset_id: int, dest: Path) -> bool:
        """Stream one dataset's file to dest (created or replaced); False, and dest left
        alone, when the archive has no file for it (include_files=false, or not a dataset
        of the snapshot). Raises UnsafeArchive, and removes dest, when the bytes do not
        match the record or the archive turns out corrupt."""
        member = self.files.get(dataset_id)
        if member is None:
            return False
        record = self._records[dataset_id]
        try:
            with self._open_member(member) as src, dest.open("wb") as out:
                _stream(record, member, src, out.write)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return True

    def close(self) -> None:
        self._close()

    def __enter__(self) -> OpenedArchive:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _stream(
    record: DatasetRecord,
    member: str,
    src: IO[bytes],
    sink: Callable[[bytes], Any] | None,
    on_chunk: Callable[[], None] | None = None,
) -> None:
    digest = hashlib.sha256()
    size = 0
    while chunk := _read(member, src):
        size += len(chunk)
        if size > record.file.size:
            raise UnsafeArchive(
                f"{member} is larger than its record says ({record.file.size} bytes)"
            )
        digest.update(chunk)
        if sink is not None:
            sink(chunk)
        if on_chunk is not None:
            on_chunk()
    if size != record.file.size:
        raise UnsafeArchive(
            f"{member} has {size} bytes; its record says {record.file.size} (truncated?)"
        )
    if digest.hexdigest() != record.file.sha256:
        raise UnsafeArchive(f"{member} does not match the sha256 of its record")


def _read(member: str, src: IO[bytes]) -> bytes:
    """A chunk of a member; a corrupt archive (bad CRC, broken deflate or gzip data,
    truncation) says so as UnsafeArchive, unlike a failure to write the destination."""
    try:
        return src.read(CHUNK)
    except _CORRUPT as exc:
        raise UnsafeArchive(f"corrupt or truncated archive while reading {member}: {exc}") from exc


def read_archive(path: Path, *, limits: ArchiveLimits | None = None) -> OpenedArchive:
    """Open a rocrate.zip or tar.gz history archive (told apart by their magic bytes),
    check it, and answer its snapshot. Raises UnsafeArchive saying why it was refused."""
    limits = limits or ArchiveLimits()
    with path.open("rb") as f:
        magic = f.read(4)
    if magic[:2] == b"PK":
        reader: _Zip | _Tar = _Zip(path, limits)
    elif magic[:2] == b"\x1f\x8b":
        reader = _Tar(path, limits)
    else:
        raise UnsafeArchive("not a history archive: neither a zip nor a gzip file")
    try:
        reader.scan()
        document, files = reader.document()
        if not isinstance(document, dict):
            raise UnsafeArchive("invalid history snapshot: not a JSON object")
        version = document.pop("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise UnsafeArchive(
                f"history archive format version {version!r}; this reader knows {FORMAT_VERSION}"
            )
        try:
            snapshot = from_json(document)
            check_snapshot(snapshot)
        except ValidationError as exc:
            error = exc.errors()[0]
            location = ".".join(str(part) for part in error["loc"])
            raise UnsafeArchive(f"invalid history snapshot: {error['msg']} at {location}") from exc
        except InvalidSnapshot as exc:
            raise UnsafeArchive(f"invalid history snapshot: {exc}") from exc
        records = {d.id: d for d in snapshot.datasets}
        referenced: dict[str, int] = {}
        for dataset_id, member in files.items():
            if dataset_id not in records:
                raise UnsafeArchive(f"{member} belongs to no dataset of the snapshot")
            if member in referenced:
                raise UnsafeArchive(f"{member} is the file of two datasets")
            if member not in reader.dataset_members:
                raise UnsafeArchive(f"{member}, the file of dataset {dataset_id}, is missing")
            referenced[member] = dataset_id
        for member in reader.dataset_members:
            if member not in referenced:
                raise UnsafeArchive(f"{member} is not the file of any dataset of the snapshot")
        if limits.verify_files:
            reader.verify({member: records[i] for member, i in referenced.items()})
    except UnsafeArchive:
        reader.close()
        raise
    except _CORRUPT as exc:
        reader.close()
        raise UnsafeArchive(f"corrupt or truncated archive: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reader.close()
        raise UnsafeArchive(f"invalid archive metadata: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        reader.close()
        raise
    return OpenedArchive(snapshot, files, reader.open_member, reader.close, reader.fmt)


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UnsafeArchive(f"{name} is not valid JSON: {exc}") from exc


def _files_map(raw: Any) -> dict[int, str]:
    if not isinstance(raw, dict):
        raise UnsafeArchive("invalid history snapshot: 'files' is not an object")
    files: dict[int, str] = {}
    for key, member in raw.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(member, str)):
            raise UnsafeArchive(f"invalid history snapshot: files entry {key!r}: {member!r}")
        files[int(key)] = member
    return files


class _Zip:
    fmt = "rocrate.zip"

    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        self.archive: zipfile.ZipFile | None = None
        self.dataset_members: dict[str, zipfile.ZipInfo] = {}
        self.metadata: dict[str, zipfile.ZipInfo] = {}

    def _precheck_entries(self) -> None:
        """The member count from the end record, before zipfile reads every entry of a
        central directory that could be huge."""
        end_record = getattr(zipfile, "_EndRecData", None)
        if end_record is None:  # pragma: no cover
            return
        with self.path.open("rb") as f:
            end = end_record(f)
        if end is None:
            raise zipfile.BadZipFile("no end of central directory record")
        entries = end[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)]
        if entries > self.limits.max_members:
            raise UnsafeArchive(f"{entries} members; at most {self.limits.max_members}")

    def scan(self) -> None:
        limits = self.limits
        self._precheck_entries()
        self.archive = zipfile.ZipFile(self.path)
        infos = self.archive.infolist()
        if len(infos) > limits.max_members:
            raise UnsafeArchive(f"{len(infos)} members; at most {limits.max_members}")
        total = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            if info.orig_filename != name:
                raise UnsafeArchive(f"member {info.orig_filename!r} has an invalid name")
            check_member_name(name, ZIP_LAYOUT)
            if name in seen:
                raise UnsafeArchive(f"member {name!r} appears twice")
            seen.add(name)
            mode = info.external_attr >> 16
            if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise UnsafeArchive(
                    f"member {name!r} is not a regular file (a link, device or directory)"
                )
            if info.flag_bits & 0x1:
                raise UnsafeArchive(f"member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise UnsafeArchive(f"member {name!r} uses an unsupported compression method")
            total += info.file_size
            if total > limits.max_total_bytes:
                raise UnsafeArchive(
                    f"the archive expands past {limits.max_total_bytes} bytes: "
                    "a decompression bomb, or larger than allowed"
                )
            if (
                info.file_size > limits.ratio_floor_bytes
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)
            ):
                raise UnsafeArchive(
                    f"member {name!r} expands {info.file_size // max(info.compress_size, 1)}x "
                    f"(at most {limits.max_ratio:g}x): a decompression bomb"
                )
            if name.startswith(DATASETS_DIR):
                self.dataset_members[name] = info
            else:
                self.metadata[name] = info
        # Members whose data overlap (the same bytes expanded many times) are a bomb.
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for before, after in itertools.pairwise(ordered):
            if before.header_offset + 30 + before.compress_size > after.header_offset:
                raise UnsafeArchive(
                    f"members {before.filename!r} and {after.filename!r} overlap: "
                    "a decompression bomb"
                )

    def _read_json(self, name: str) -> Any:
        assert self.archive is not None
        info = self.metadata.get(name)
        if info is None:
            raise UnsafeArchive(f"{name} is missing: not a Waybill history archive")
        limit = self.limits.max_metadata_bytes
        if info.file_size > limit:
            raise UnsafeArchive(f"{name} is larger than {limit} bytes")
        with self.archive.open(info) as f:
            data = f.read(limit + 1)
        return _parse_json(name, data)

    def document(self) -> tuple[Any, dict[int, str]]:
        crate = self._read_json(CRATE_MEMBER)
        if not (
            isinstance(crate, dict)
            and isinstance(crate.get("@graph"), list)
            and any(isinstance(e, dict) and e.get("@id") == CRATE_MEMBER for e in crate["@graph"])
        ):
            raise UnsafeArchive(f"{CRATE_MEMBER} is not RO-Crate metadata")
        document = self._read_json(SNAPSHOT_MEMBER)
        if not isinstance(document, dict):
            raise UnsafeArchive(f"{SNAPSHOT_MEMBER} is not a JSON object")
        return document, _files_map(document.pop("files", {}))

    def verify(self, records: dict[str, DatasetRecord]) -> None:
        assert self.archive is not None
        for member, record in records.items():
            with self.archive.open(self.dataset_members[member]) as src:
                _stream(record, member, src, None)

    def open_member(self, name: str) -> IO[bytes]:
        assert self.archive is not None
        return self.archive.open(self.dataset_members[name])

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


class _Tar:
    """One pass over the gzip stream checks every member, keeps the (bounded) JSON
    documents and hashes the dataset files; extract_dataset seeks back later."""

    fmt = "tar.gz"

    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        self.raw = path.open("rb")
        self.archive: tarfile.TarFile | None = None
        self.dataset_members: dict[str, tarfile.TarInfo] = {}
        self.json: dict[str, bytes] = {}
        self.hashes: dict[str, tuple[int, str]] = {}

    def _check_ratio(self, expanded: int) -> None:
        compressed = max(self.raw.tell(), 1)
        if (
            expanded > self.limits.ratio_floor_bytes
            and expanded > self.limits.max_ratio * compressed
        ):
            raise UnsafeArchive(
                f"the archive expands {expanded // compressed}x "
                f"(at most {self.limits.max_ratio:g}x): a decompression bomb"
            )

    def scan(self) -> None:
        limits = self.limits
        if igzip is not None:
            self.gz: gzip.GzipFile = igzip.IGzipFile(fileobj=self.raw, mode="rb")
            self.archive = tarfile.open(fileobj=self.gz, mode="r:")  # noqa: SIM115 (closed by close())
        else:  # pragma: no cover
            self.archive = tarfile.open(fileobj=self.raw, mode="r:gz")  # noqa: SIM115
        archive = self.archive
        total = 0
        count = 0
        while (member := archive.next()) is not None:
            count += 1
            if count > limits.max_members:
                raise UnsafeArchive(f"more than {limits.max_members} members")
            name = member.name
            check_member_name(name, TAR_LAYOUT)
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
                raise UnsafeArchive(
                    f"member {name!r} is not a regular file (a link, device, directory or sparse file)"
                )
            if name in self.dataset_members or name in self.json:
                raise UnsafeArchive(f"member {name!r} appears twice")
            total += member.size
            if total > limits.max_total_bytes:
                raise UnsafeArchive(
                    f"the archive expands past {limits.max_total_bytes} bytes: "
                    "a decompression bomb, or larger than allowed"
                )
            src = archive.extractfile(member)
            assert src is not None
            offset = member.offset_data
            if name.startswith(DATASETS_DIR):
                self.dataset_members[name] = member
                digest = hashlib.sha256()
                read = 0
                while chunk := src.read(CHUNK):
                    read += len(chunk)
                    digest.update(chunk)
                    self._check_ratio(offset + read)
                if read != member.size:
                    raise EOFError(f"{name} is truncated")
                self.hashes[name] = (read, digest.hexdigest())
            else:
                if member.size > limits.max_metadata_bytes:
                    raise UnsafeArchive(f"{name} is larger than {limits.max_metadata_bytes} bytes")
                data = src.read()
                if len(data) != member.size:
                    raise EOFError(f"{name} is truncated")
                self._check_ratio(offset + len(data))
                self.json[name] = data
        if count == 0:
            raise UnsafeArchive("an empty archive")

    def document(self) -> tuple[Any, dict[int, str]]:
        parts: dict[str, Any] = {}
        for name in TAR_MEMBERS:
            if name not in self.json:
                raise UnsafeArchive(f"{name} is missing: not a Waybill history archive")
            parts[name] = _parse_json(name, self.json.pop(name))
        head, datasets = parts["history.json"], parts["datasets.json"]
        if not isinstance(head, dict):
            raise UnsafeArchive("history.json is not a JSON object")
        if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
            raise UnsafeArchive("datasets.json is not a list of objects")
        files: dict[int, str] = {}
        for d in datasets:
            member = d.pop("path", None)
            if member is not None:
                if not isinstance(member, str) or not isinstance(d.get("id"), int):
                    raise UnsafeArchive(f"datasets.json: invalid path {member!r}")
                if d["id"] in files:
                    raise UnsafeArchive(f"datasets.json: dataset {d['id']} appears twice")
                files[d["id"]] = member
        document = {
            "format_version": head.get("format_version", FORMAT_VERSION),
            "history": head.get("history"),
            "exported_at": head.get("exported_at"),
            "include_files": head.get("include_files"),
            "datasets": datasets,
            "collections": parts["collections.json"],
            "jobs": parts["jobs.json"],
            "implicit_collection_jobs": parts["implicit_collection_jobs.json"],
        }
        return document, files

    def verify(self, records: dict[str, DatasetRecord]) -> None:
        for member, record in records.items():
            size, sha256 = self.hashes[member]
            if size != record.file.size:
                raise UnsafeArchive(
                    f"{member} has {size} bytes; its record says {record.file.size}"
                )
            if sha256 != record.file.sha256:
                raise UnsafeArchive(f"{member} does not match the sha256 of its record")

    def open_member(self, name: str) -> IO[bytes]:
        assert self.archive is not None
        src = self.archive.extractfile(self.dataset_members[name])
        assert src is not None
        return src

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
        if getattr(self, "gz", None) is not None:
            self.gz.close()
        self.raw.close()
