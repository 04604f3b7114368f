"""A zip archive (rocrate.zip, bag.zip): every member checked from the central
directory before anything is decompressed."""

from __future__ import annotations

import hashlib
import itertools
import stat
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

from waybill_export_worker.history_archive.bag import Bag
from waybill_export_worker.history_archive.codec import (
    CRATE_MEMBER,
    DATASETS_DIR,
    SNAPSHOT_MEMBER,
    WORKFLOWS_DIR,
)
from waybill_export_worker.history_archive.documents import (
    files_map,
    parse_json,
    tar_layout_document,
)
from waybill_export_worker.history_archive.model import DatasetRecord
from waybill_export_worker.history_archive.placement import CRATE_LAYOUT, Placement
from waybill_export_worker.history_archive.safety import (
    ArchiveLimits,
    UnsafeArchive,
    check_expanded_total,
    check_ratio,
    copy_checked,
    read_chunk,
)

# The records at the end of a zip file (PKWARE's APPNOTE.TXT, 4.3.14-4.3.16), as
# zipfile reads them: the end of central directory record, and the zip64 locator and
# record that stand before it when the counts do not fit in 16 bits.
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_MAX_COMMENT = 0xFFFF
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"


def declared_member_count(f: IO[bytes]) -> int:
    """The member count the end of central directory record declares (its zip64 form
    where there is one), found as zipfile finds it: the last 22 bytes when the archive
    has no comment, else the last signature within a comment's reach of the end.
    Raises zipfile.BadZipFile when there is none, or the archive spans disks: zipfile
    itself would refuse it."""
    size = f.seek(0, 2)
    if size < _END.size:
        raise zipfile.BadZipFile("no end of central directory record")
    f.seek(size - _END.size)
    tail = f.read()
    at = size - _END.size
    if not (tail[:4] == _END_SIGNATURE and tail[-2:] == b"\0\0"):  # a comment follows
        start = max(size - _MAX_COMMENT - _END.size, 0)
        f.seek(start)
        tail = f.read()
        found = tail.rfind(_END_SIGNATURE)
        if found < 0 or len(tail) - found < _END.size:
            raise zipfile.BadZipFile("no end of central directory record")
        tail, at = tail[found:], start + found
    entries: int = _END.unpack_from(tail)[4]
    zip64 = _zip64_member_count(f, at)
    return entries if zip64 is None else zip64


def _zip64_member_count(f: IO[bytes], end_at: int) -> int | None:
    """The zip64 record's member count, for the end record at `end_at`; None when
    there is no zip64 record."""
    locator_at = end_at - _ZIP64_LOCATOR.size
    if locator_at < 0:
        return None
    f.seek(locator_at)
    data = f.read(_ZIP64_LOCATOR.size)
    if len(data) != _ZIP64_LOCATOR.size:
        return None
    signature, disk, _, disks = _ZIP64_LOCATOR.unpack(data)
    if signature != _ZIP64_LOCATOR_SIGNATURE:
        return None
    if disk != 0 or disks > 1:
        raise zipfile.BadZipFile("zipfiles that span multiple disks are not supported")
    record_at = locator_at - _ZIP64_END.size
    if record_at < 0:
        raise zipfile.BadZipFile("truncated zip64 end of central directory record")
    f.seek(record_at)
    data = f.read(_ZIP64_END.size)
    if len(data) != _ZIP64_END.size:
        return None
    fields = _ZIP64_END.unpack(data)
    if fields[0] != _ZIP64_END_SIGNATURE:
        return None
    total: int = fields[7]
    return total


class ZipReader:
    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        self.archive: zipfile.ZipFile | None = None
        self.placement = Placement(CRATE_LAYOUT)
        self.bag: Bag | None = None
        self.dataset_members: dict[str, zipfile.ZipInfo] = {}
        self.workflow_members: dict[str, zipfile.ZipInfo] = {}
        self.metadata: dict[str, zipfile.ZipInfo] = {}

    @property
    def fmt(self) -> str:
        return "bag.zip" if self.bag is not None else "rocrate.zip"

    def _precheck_entries(self) -> None:
        """The member count from the end record, before zipfile reads every entry of a
        central directory that could be huge."""
        with self.path.open("rb") as f:
            entries = declared_member_count(f)
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
        tags: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if info.orig_filename != name:
                raise UnsafeArchive(f"member {info.orig_filename!r} has an invalid name")
            kind, placed = self.placement.place(name)
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
            check_expanded_total(total, limits)
            check_ratio(f"member {name!r}", info.file_size, info.compress_size, limits)
            if kind == "tag":
                tags[placed] = info
            elif placed.startswith(DATASETS_DIR):
                self.dataset_members[placed] = info
            elif placed.startswith(WORKFLOWS_DIR):
                self.workflow_members[placed] = info
            else:
                self.metadata[placed] = info
        # Members whose data overlap (the same bytes expanded many times) are a bomb.
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for before, after in itertools.pairwise(ordered):
            if before.header_offset + 30 + before.compress_size > after.header_offset:
                raise UnsafeArchive(
                    f"members {before.filename!r} and {after.filename!r} overlap: "
                    "a decompression bomb"
                )
        if self.placement.bag is not None:
            self.bag = Bag(self.placement.bag)
            for tag, info in tags.items():
                self.bag.tags[tag] = self._read_bounded(info, tag)

    def _read_bounded(self, info: zipfile.ZipInfo, name: str) -> bytes:
        assert self.archive is not None
        limit = self.limits.max_metadata_bytes
        if info.file_size > limit:
            raise UnsafeArchive(f"{name} is larger than {limit} bytes")
        with self.archive.open(info) as f:
            return f.read(limit + 1)

    def _read_json(self, name: str) -> Any:
        info = self.metadata.get(name)
        if info is None:
            raise UnsafeArchive(f"{name} is missing: not a Waybill history archive")
        return parse_json(name, self._read_bounded(info, name))

    def document(self) -> tuple[Any, dict[int, str]]:
        if self.bag is not None:
            return tar_layout_document(
                {name: self._read_bounded(info, name) for name, info in self.metadata.items()}
            )
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
        return document, files_map(document.pop("files", {}))

    def payload_members(self) -> list[str]:
        return [*self.dataset_members, *self.workflow_members, *self.metadata]

    def sha256(self, member: str) -> str:
        assert self.archive is not None
        info = (
            self.dataset_members.get(member)
            or self.workflow_members.get(member)
            or self.metadata[member]
        )
        digest = hashlib.sha256()
        with self.archive.open(info) as src:
            while chunk := read_chunk(member, src):
                digest.update(chunk)
        return digest.hexdigest()

    def verify(self, records: dict[str, DatasetRecord]) -> None:
        assert self.archive is not None
        for member, record in records.items():
            with self.archive.open(self.dataset_members[member]) as src:
                copy_checked(record, member, src, None)

    def open_member(self, name: str) -> IO[bytes]:
        assert self.archive is not None
        return self.archive.open(self.dataset_members[name])

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
