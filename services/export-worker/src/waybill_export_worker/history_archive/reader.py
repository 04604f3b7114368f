"""Reading an archive back for re-import, refusing anything unsafe or inconsistent.

Every format but bco.json re-imports: rocrate.zip, tar.gz (= tgz), tar, and the BagIt
bags bag.zip, bag.tar, bag.tgz, told apart by their first bytes and their layout.
`read_archive` looks at every member before it answers: names (no absolute paths, no
'..', no control characters, nothing outside the layout, no duplicates), types (regular
files only: no links, devices, directories), sizes (member count, total expanded size,
compression ratio: a decompression bomb stops as soon as it shows), integrity (corrupt
or truncated archives, CRCs, a bag's manifests), the snapshot document (present,
bounded, valid), and, by default, every dataset file's size and sha256 against its
record. Nothing is written to disk: `extract_dataset` streams one file to a path the
caller chooses, checking it again.
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
    TAR_WORKFLOWS_MEMBER,
    WORKFLOW_MEMBER,
    WORKFLOWS_DIR,
    InvalidSnapshot,
    check_snapshot,
    from_json,
    workflow_member,
)
from waybill_export_worker.history_archive.model import DatasetRecord, HistorySnapshot

CHUNK = 1024 * 1024
CRATE_LAYOUT = frozenset({SNAPSHOT_MEMBER, CRATE_MEMBER})
TAR_LAYOUT = frozenset({*TAR_MEMBERS, TAR_WORKFLOWS_MEMBER})
# A bag's tag files. Only the sha256 manifests are checked (the ones Waybill writes);
# manifests of other algorithms that another tool added are allowed and left alone.
BAG_TAGS = frozenset(
    {"bagit.txt", "bag-info.txt"}
    | {
        f"{kind}-{alg}.txt"
        for kind in ("manifest", "tagmanifest")
        for alg in ("md5", "sha1", "sha256", "sha512")
    }
)
BAG_PAYLOAD = "data/"

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


def check_member_name(name: str) -> None:
    """Safe whatever the layout: no empty, absolute, Windows, '..' or control names."""
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


def _in_layout(name: str, layout: frozenset[str]) -> bool:
    return (
        name in layout
        or (name.startswith(DATASETS_DIR) and DATASET_MEMBER.fullmatch(name) is not None)
        or (name.startswith(WORKFLOWS_DIR) and WORKFLOW_MEMBER.fullmatch(name) is not None)
    )


class _Placement:
    """Where each member belongs: the archive's own layout (a plain archive), or a
    BagIt bag, whose one top-level directory holds tag files and, under data/, the tar
    layout. Members are named by their place in the layout from here on."""

    def __init__(self, layout: frozenset[str]) -> None:
        self.layout = layout
        self.bag: str | None = None  # the bag's directory
        self.plain = False

    def place(self, name: str) -> tuple[str, str]:
        """("layout" | "tag", the name within the layout or the bag)."""
        check_member_name(name)
        top, _, rest = name.partition("/")
        if _in_layout(name, self.layout) or not rest:
            if self.bag is not None:
                raise UnsafeArchive(f"member {name!r} is outside the bag's directory")
            if not _in_layout(name, self.layout):
                raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
            self.plain = True
            return "layout", name
        if self.plain or (self.bag is not None and top != self.bag):
            raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
        self.bag = top
        if rest in BAG_TAGS:
            return "tag", rest
        payload = rest.removeprefix(BAG_PAYLOAD)
        if payload == rest or not _in_layout(payload, TAR_LAYOUT):
            raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
        return "layout", payload


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
    """Open a history archive in any re-importable format (told apart by its first
    bytes and its layout), check it, and answer its snapshot. Raises UnsafeArchive
    saying why it was refused; a bco.json is refused as the description it is."""
    limits = limits or ArchiveLimits()
    with path.open("rb") as f:
        head = f.read(512)
    if head[:2] == b"PK":
        reader: _Zip | _Tar = _Zip(path, limits)
    elif head[:2] == b"\x1f\x8b":
        reader = _Tar(path, limits, compressed=True)
    elif head[257:262] == b"ustar":
        reader = _Tar(path, limits, compressed=False)
    elif head.lstrip()[:1] == b"{":
        raise UnsafeArchive(
            "a JSON document, not an archive: a bco.json (BioCompute Object) describes a "
            "history and cannot be re-imported; export it as rocrate.zip, tar.gz, tgz, tar, "
            "bag.zip, bag.tar or bag.tgz to re-import it"
        )
    else:
        raise UnsafeArchive("not a history archive: neither a zip nor a (gzipped) tar file")
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
        workflows = {workflow_member(w) for w in snapshot.workflows}
        for member in reader.workflow_members:
            if member not in workflows:
                raise UnsafeArchive(f"{member} is not the document of any workflow of the snapshot")
        if reader.bag is not None:
            reader.bag.check(reader, {m: records[i] for m, i in referenced.items()})
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


def _tar_layout_document(json_members: dict[str, bytes]) -> tuple[Any, dict[int, str]]:
    """The snapshot from the tar layout's JSON members (a tar or a bag's payload)."""
    parts: dict[str, Any] = {}
    for name in TAR_MEMBERS:
        if name not in json_members:
            raise UnsafeArchive(f"{name} is missing: not a Waybill history archive")
        parts[name] = _parse_json(name, json_members[name])
    workflows: Any = []
    if TAR_WORKFLOWS_MEMBER in json_members:
        workflows = _parse_json(TAR_WORKFLOWS_MEMBER, json_members[TAR_WORKFLOWS_MEMBER])
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
        "workflows": workflows,
    }
    return document, files


class _Bag:
    """A BagIt bag's tag files, and the checks RFC 8493 asks of a complete, valid bag:
    bagit.txt, a sha256 manifest listing every payload file (and nothing else) with its
    checksum, and the sha256 tag manifest's checksums of the tag files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tags: dict[str, bytes] = {}

    def check(self, reader: _Zip | _Tar, datasets: dict[str, DatasetRecord]) -> None:
        if "bagit.txt" not in self.tags:
            raise UnsafeArchive(f"bag {self.name!r} has no bagit.txt")
        if not self.tags["bagit.txt"].startswith(b"BagIt-Version: "):
            raise UnsafeArchive(f"bag {self.name!r}: bagit.txt does not declare a BagIt-Version")
        if "manifest-sha256.txt" not in self.tags:
            raise UnsafeArchive(f"bag {self.name!r} has no manifest-sha256.txt")
        manifest = self._manifest("manifest-sha256.txt")
        payload = {BAG_PAYLOAD + m for m in reader.payload_members()}
        for path in sorted(payload ^ set(manifest)):
            where = "missing from the manifest" if path in payload else "missing from the bag"
            raise UnsafeArchive(f"bag {self.name!r}: {path} is {where}")
        for path, sha256 in manifest.items():
            member = path.removeprefix(BAG_PAYLOAD)
            record = datasets.get(member)
            # A dataset file is checked against its record (verify_files); the record
            # and the manifest must agree. Everything else is hashed here.
            actual = record.file.sha256 if record is not None else reader.sha256(member)
            if actual != sha256:
                raise UnsafeArchive(f"bag {self.name!r}: {path} does not match its manifest")
        if "tagmanifest-sha256.txt" in self.tags:
            for path, sha256 in self._manifest("tagmanifest-sha256.txt").items():
                data = self.tags.get(path)
                if data is None or hashlib.sha256(data).hexdigest() != sha256:
                    raise UnsafeArchive(f"bag {self.name!r}: tag file {path} does not match")

    def _manifest(self, tag: str) -> dict[str, str]:
        entries: dict[str, str] = {}
        for line in self.tags[tag].decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            sha256, _, path = line.strip().partition(" ")
            path = path.strip().replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
            if len(sha256) != 64 or not path or path in entries:
                raise UnsafeArchive(f"bag {self.name!r}: {tag} has an invalid line {line[:80]!r}")
            entries[path] = sha256.lower()
        return entries


class _Zip:
    def __init__(self, path: Path, limits: ArchiveLimits) -> None:
        self.path = path
        self.limits = limits
        self.archive: zipfile.ZipFile | None = None
        self.placement = _Placement(CRATE_LAYOUT)
        self.bag: _Bag | None = None
        self.dataset_members: dict[str, zipfile.ZipInfo] = {}
        self.workflow_members: dict[str, zipfile.ZipInfo] = {}
        self.metadata: dict[str, zipfile.ZipInfo] = {}

    @property
    def fmt(self) -> str:
        return "bag.zip" if self.bag is not None else "rocrate.zip"

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
            self.bag = _Bag(self.placement.bag)
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
        return _parse_json(name, self._read_bounded(info, name))

    def document(self) -> tuple[Any, dict[int, str]]:
        if self.bag is not None:
            return _tar_layout_document(
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
        return document, _files_map(document.pop("files", {}))

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
            while chunk := _read(member, src):
                digest.update(chunk)
        return digest.hexdigest()

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
        self.placement = _Placement(TAR_LAYOUT)
        self.bag: _Bag | None = None
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
        if not self.compressed:
            return
        compressed = max(self.raw.tell(), 1)
        if (
            expanded > self.limits.ratio_floor_bytes
            and expanded > self.limits.max_ratio * compressed
        ):
            raise UnsafeArchive(
                f"the archive expands {expanded // compressed}x "
                f"(at most {self.limits.max_ratio:g}x): a decompression bomb"
            )

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
            if total > limits.max_total_bytes:
                raise UnsafeArchive(
                    f"the archive expands past {limits.max_total_bytes} bytes: "
                    "a decompression bomb, or larger than allowed"
                )
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
            self.bag = _Bag(self.placement.bag)
            self.bag.tags = tags

    def document(self) -> tuple[Any, dict[int, str]]:
        return _tar_layout_document(self.json)

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
