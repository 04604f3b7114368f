"""Deflate on every core the process may use: ISA-L (the same deflate format as zlib,
several times faster, and it releases the GIL) on one shared thread pool. ZIP members
(archive.py) and HDF5's gzip chunks (hdf5.py) both go through it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from isal import isal_zlib

from waybill_export_worker.conversion.cpus import usable_cpus

ISAL_LEVEL = 2  # ISA-L levels are 0-3; 2 compresses about as well as zlib's 6
WORKERS = usable_cpus()
_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="deflate")
    return _pool


def raw_piece(piece: bytes) -> bytes:
    """A raw deflate run (no header) ended by a sync flush on a byte boundary, so that
    pieces concatenate into one stream: ZIP's member format."""
    compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -15)
    return compressor.compress(piece) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)


def zlib_stream(data: bytes | memoryview) -> bytes:
    """A whole zlib stream (header and checksum): what HDF5's gzip filter stores."""
    return isal_zlib.compress(data, ISAL_LEVEL)
