"""ZIP packaging (first version; streaming, stdlib zlib)."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from types import TracebackType

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency of the worker
    isal_zlib = None  # type: ignore[assignment]

ISAL_LEVEL = 2  # ISA-L levels are 0-3; 2 compresses about as well as zlib's 6
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]+")
_STORED = {".parquet", ".xlsx", ".gz", ".zip", ".h5", ".bz2", ".xz", ".zst"}


def use_fast_deflate(dst: object) -> None:
    """Deflate a zip member with ISA-L instead of zlib: the same raw deflate stream
    (zipfile still computes CRC and sizes), about ten times faster. zipfile keeps its
    compressor in a private attribute; without it, zlib does the work as usual."""
    if isal_zlib is not None and getattr(dst, "_compressor", None) is not None:
        dst._compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -15)  # type: ignore[attr-defined]


def safe_member_name(name: str, taken: set[str]) -> str:
    base = _UNSAFE.sub("_", name).strip().lstrip(".") or "file"
    base = base.replace("..", "_")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    candidate, n = base, 1
    while candidate.lower() in {t.lower() for t in taken}:
        n += 1
        candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
    taken.add(candidate)
    return candidate


class ZipPackager:
    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def add_file(self, member_name: str, source: Path, *, compress: bool | None = None) -> None:
        if compress is None:
            compress = source.suffix.lower() not in _STORED
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info = zipfile.ZipInfo(member_name)
        info.compress_type = method
        with source.open("rb") as src, self._zip.open(info, "w", force_zip64=True) as dst:
            if compress:
                use_fast_deflate(dst)
            shutil.copyfileobj(src, dst, 1024 * 1024)

    def add_bytes(self, member_name: str, data: bytes) -> None:
        self._zip.writestr(member_name, data, compress_type=zipfile.ZIP_DEFLATED)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipPackager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
