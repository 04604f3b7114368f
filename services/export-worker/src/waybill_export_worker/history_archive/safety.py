"""What makes an archive unsafe to read, checked as it is read: a member's name, the
limits that stop a decompression bomb as soon as it shows, corrupt data, and bytes
that do not match their record."""

from __future__ import annotations

import hashlib
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, cast

from waybill_export_worker.history_archive.model import DatasetRecord

CHUNK = 1024 * 1024

try:  # the tar reader's gzip is ISA-L's igzip where it is installed
    from isal import isal_zlib

    _isal_error = cast("type[Exception]", isal_zlib.error)
except ImportError:  # pragma: no cover - isal is a dependency of the worker
    _isal_error = zlib.error
# What a corrupt or truncated archive raises while it is read.
CORRUPT = (
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


def check_expanded_total(total: int, limits: ArchiveLimits) -> None:
    """`total` bytes expanded so far, against the archive's budget."""
    if total > limits.max_total_bytes:
        raise UnsafeArchive(
            f"the archive expands past {limits.max_total_bytes} bytes: "
            "a decompression bomb, or larger than allowed"
        )


def check_ratio(what: str, expanded: int, compressed: int, limits: ArchiveLimits) -> None:
    """`what` (a member, or the whole gzip stream) expanding `compressed` bytes to
    `expanded`: past the floor, at most `max_ratio` times."""
    compressed = max(compressed, 1)
    if expanded > limits.ratio_floor_bytes and expanded > limits.max_ratio * compressed:
        raise UnsafeArchive(
            f"{what} expands {expanded // compressed}x "
            f"(at most {limits.max_ratio:g}x): a decompression bomb"
        )


def read_chunk(member: str, src: IO[bytes]) -> bytes:
    """A chunk of a member; a corrupt archive (bad CRC, broken deflate or gzip data,
    truncation) says so as UnsafeArchive, unlike a failure to write the destination."""
    try:
        return src.read(CHUNK)
    except CORRUPT as exc:
        raise UnsafeArchive(f"corrupt or truncated archive while reading {member}: {exc}") from exc


def copy_checked(
    record: DatasetRecord,
    member: str,
    src: IO[bytes],
    sink: Callable[[bytes], Any] | None,
) -> None:
    """Read `member` from `src` to its end, each chunk to `sink` (if any), checking its
    bytes against the record: never past its size, then its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := read_chunk(member, src):
        size += len(chunk)
        if size > record.file.size:
            raise UnsafeArchive(
                f"{member} is larger than its record says ({record.file.size} bytes)"
            )
        digest.update(chunk)
        if sink is not None:
            sink(chunk)
    if size != record.file.size:
        raise UnsafeArchive(
            f"{member} has {size} bytes; its record says {record.file.size} (truncated?)"
        )
    if digest.hexdigest() != record.file.sha256:
        raise UnsafeArchive(f"{member} does not match the sha256 of its record")
