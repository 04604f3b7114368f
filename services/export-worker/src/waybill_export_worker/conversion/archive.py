"""ZIP packaging: streaming, members deflated by ISA-L on every core."""

from __future__ import annotations

import re
import shutil
import zipfile
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from waybill_export_worker.conversion import deflate

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]+")
# Compressed already (as our converters write them by default): stored, not deflated.
_STORED = {
    ".parquet",
    ".xlsx",
    ".gz",
    ".zip",
    ".h5",
    ".bz2",
    ".xz",
    ".zst",
    ".orc",
    ".arrow",
    ".nc",
}


PIECE_BYTES = 1024 * 1024
_FINAL_BLOCK = b"\x03\x00"  # an empty fixed-Huffman block with the final bit set


class ParallelDeflate:
    """A raw-deflate compressor (zipfile's `compress` / `flush`) that deflates 1 MiB
    pieces on a thread pool; ISA-L releases the GIL, so every core works (2 cores:
    ~265 MB/s against ~150 on one). Each piece is a deflate run of its own, ended by a
    sync flush on a byte boundary, so the pieces concatenate into one valid stream,
    closed by an empty final block; the ratio is unchanged. Output comes back in
    order, with at most two pieces per core in flight."""

    def __init__(self) -> None:
        self.pool = deflate.pool()
        self.buffer = bytearray()
        self.pending: deque[Future[bytes]] = deque()

    def compress(self, data: bytes) -> bytes:
        view = memoryview(data)
        if self.buffer:
            take = PIECE_BYTES - len(self.buffer)
            self.buffer += view[:take]
            view = view[take:]
            if len(self.buffer) == PIECE_BYTES:
                self._submit(bytes(self.buffer))
                self.buffer = bytearray()
        while len(view) >= PIECE_BYTES:
            # zipfile is fed 1 MiB reads: a whole read is deflated as it is, uncopied.
            whole = len(view) == len(data) == PIECE_BYTES and isinstance(data, bytes)
            self._submit(data if whole else bytes(view[:PIECE_BYTES]))
            view = view[PIECE_BYTES:]
        self.buffer += view
        done = []
        while self.pending and (self.pending[0].done() or len(self.pending) > 2 * deflate.WORKERS):
            done.append(self.pending.popleft().result())
        return b"".join(done)

    def flush(self) -> bytes:
        if not self.pending:  # a small member: deflated here, without a pool round trip
            tail = deflate.raw_piece(bytes(self.buffer)) if self.buffer else b""
            self.buffer = bytearray()
            return tail + _FINAL_BLOCK
        if self.buffer:
            self._submit(bytes(self.buffer))
            self.buffer = bytearray()
        done = [future.result() for future in self.pending]
        self.pending.clear()
        return b"".join(done) + _FINAL_BLOCK

    def _submit(self, piece: bytes) -> None:
        self.pending.append(self.pool.submit(deflate.raw_piece, piece))


class FastDeflateZipFile(zipfile.ZipFile):
    """A ZipFile whose deflated members are deflated by ISA-L on every core instead of
    zlib on one: the same raw deflate format (zipfile still computes CRC and sizes).
    Our packagers use it, and so does xlsxwriter (writers/excel.py). zipfile keeps
    a member's compressor in a private attribute; without it, zlib does the work."""

    def open(
        self,
        name: str | zipfile.ZipInfo,
        mode: Literal["r", "w"] = "r",
        pwd: bytes | None = None,
        *,
        force_zip64: bool = False,
    ) -> IO[bytes]:
        member = super().open(name, mode, pwd, force_zip64=force_zip64)
        if mode == "w" and getattr(member, "_compressor", None) is not None:
            member._compressor = ParallelDeflate()  # type: ignore[attr-defined]
        return member


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


def _method(member_name: str) -> int:
    """Deflate, unless the member is compressed already (Parquet, xlsx, archives...)."""
    suffix = "." + member_name.rsplit(".", 1)[-1].lower() if "." in member_name else ""
    return zipfile.ZIP_STORED if suffix in _STORED else zipfile.ZIP_DEFLATED


class ZipPackager:
    """A ZIP written to a file, or to memory (`io.BytesIO`) for a small package."""

    def __init__(self, target: Path | IO[bytes]) -> None:
        self._zip = FastDeflateZipFile(
            target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
        )

    def add(self, member_name: str, source: Path | bytes) -> None:
        """A member from a file, or from bytes already in memory."""
        if isinstance(source, bytes):
            self._zip.writestr(member_name, source, compress_type=_method(member_name))
            return
        info = zipfile.ZipInfo(member_name)
        info.compress_type = _method(member_name)
        with source.open("rb") as src, self._zip.open(info, "w", force_zip64=True) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)

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
