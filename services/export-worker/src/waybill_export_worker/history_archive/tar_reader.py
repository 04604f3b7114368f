"""A tar archive, gzipped or not (tar.gz = tgz, tar, bag.tgz, bag.tar): one pass over
the stream checks every member as it comes."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path
from typing import IO, Any

from waybill_export_worker.history_archive.bag import Bag
from waybill_export_worker.history_archive.codec import DATASETS_DIR, WORKFLOWS_DIR
from waybill_export_worker.history_archive.documents import tar_layout_document
from waybill_export_worker.history_archive.model import DatasetRecord
from waybill_export_worker.history_archive.placement import TAR_LAYOUT, Placement
from waybill_export_worker.history_archive.safety import (
    CHUNK,
    ArchiveLimits,
    UnsafeArchive,
    check_expanded_total,
    check_ratio,
)

try:  # ISA-L's igzip: the same gzip streams, decompressed several times faster
    from isal import igzip
except ImportError:  # pragma: no cover - isal is a dependency of the worker
    igzip = None  # type: ignore[assignment]


class TarReader:
    """One pass over the (gzip) stream checks every member, keeps the (bounded) JSON
    documents and tag files, and hashes the dataset and workflow files;
    extract_dataset seeks back later."""

    def __init__(self, path: Path, limits: ArchiveLimits, *, compressed: bool) -> None:
        self.path = path
        self.limits = limits
        self.compressed = compressed
        self.raw = path.open("rb")
        self.gz: gzip.GzipFile | None = None
        self.archive: tarfile.TarFile | None = None
        self.placement = Placement(TAR_LAYOUT)
        self.bag: Bag | None = None
        self.dataset_members: dict[str, tarfile.TarInfo] = {}
        self.workflow_members: dict[str, tarfile.TarInfo] = {}
        self.json: dict[str, bytes] = {}
        self.hashes: dict[str, tuple[int, str]] = {}

    @property
    def fmt(self) -> str:
        if self.bag is not None:
            return "bag.tgz" if self.compressed else "bag.tar"
        return "tar.gz" if self.compressed else "tar"

    def _check_ratio(self, expanded: int) -> None:
        """The running ratio of the gzip stream: expanded so far over read so far."""
        if self.compressed:
            check_ratio("the archive", expanded, self.raw.tell(), self.limits)

    def _open(self) -> tarfile.TarFile:
        if not self.compressed:
            return tarfile.open(fileobj=self.raw, mode="r:")
        if igzip is not None:
            self.gz = igzip.IGzipFile(fileobj=self.raw, mode="rb")
            return tarfile.open(fileobj=self.gz, mode="r:")
        return tarfile.open(fileobj=self.raw, mode="r:gz")  # pragma: no cover

    def scan(self) -> None:
        limits = self.limits
        self.archive = archive = self._open()
        total = 0
        count = 0
        tags: dict[str, bytes] = {}
        while (member := archive.next()) is not None:
            count += 1
            if count > limits.max_members:
                raise UnsafeArchive(f"more than {limits.max_members} members")
            name = member.name
            kind, placed = self.placement.place(name)
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
                raise UnsafeArchive(
                    f"member {name!r} is not a regular file (a link, device, directory or sparse file)"
                )
            if placed in self.hashes or placed in self.json or placed in tags:
                raise UnsafeArchive(f"member {name!r} appears twice")
            total += member.size
            check_expanded_total(total, limits)
            src = archive.extractfile(member)
            assert src is not None
            offset = member.offset_data
            if kind == "layout" and placed.startswith((DATASETS_DIR, WORKFLOWS_DIR)):
                members = (
                    self.dataset_members
                    if placed.startswith(DATASETS_DIR)
                    else self.workflow_members
                )
                members[placed] = member
                digest = hashlib.sha256()
                read = 0
                while chunk := src.read(CHUNK):
                    read += len(chunk)
                    digest.update(chunk)
                    self._check_ratio(offset + read)
                if read != member.size:
                    raise EOFError(f"{name} is truncated")
                self.hashes[placed] = (read, digest.hexdigest())
            else:
                if member.size > limits.max_metadata_bytes:
                    raise UnsafeArchive(f"{name} is larger than {limits.max_metadata_bytes} bytes")
                data = src.read()
                if len(data) != member.size:
                    raise EOFError(f"{name} is truncated")
                self._check_ratio(offset + len(data))
                (tags if kind == "tag" else self.json)[placed] = data
        if count == 0:
            raise UnsafeArchive("an empty archive")
        if self.placement.bag is not None:
            self.bag = Bag(self.placement.bag)
            self.bag.tags = tags

    def document(self) -> tuple[Any, dict[int, str]]:
        return tar_layout_document(self.json)

    def payload_members(self) -> list[str]:
        return [*self.hashes, *self.json]

    def sha256(self, member: str) -> str:
        if member in self.json:
            return hashlib.sha256(self.json[member]).hexdigest()
        return self.hashes[member][1]

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
        if self.gz is not None:
            self.gz.close()
        self.raw.close()
