"""ZIP packing: members deflated in parallel pieces read back exactly, with zipfile's
CRC check, at every size around the piece boundary."""

from __future__ import annotations

import random
import zipfile
import zlib
from pathlib import Path

import pytest

from waybill_export_worker.conversion import archive
from waybill_export_worker.conversion.archive import ParallelDeflate, ZipPackager


@pytest.mark.parametrize("write", [3000, 4096, 10_000])  # pieces are 4096 bytes here
@pytest.mark.parametrize("size", [0, 1, 1000, 4096 * 2 - 1, 4096 * 2, 4096 * 2 + 1, 4096 * 9 + 7])
def test_parallel_deflate_is_one_valid_stream(
    size: int, write: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "PIECE_BYTES", 4096)
    rng = random.Random(size)
    data = bytes(rng.choice(b"ACGT,\n0123456789") for _ in range(size))
    compressor = ParallelDeflate()
    out = b"".join(compressor.compress(data[i : i + write]) for i in range(0, size, write))
    out += compressor.flush()
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(out) == data and inflate.eof and not inflate.unused_data


def test_zip_members_read_back_with_their_crc(tmp_path: Path) -> None:
    text = tmp_path / "table.csv"
    text.write_bytes(b"gene,count\n" + b"".join(b"g%d,%d\n" % (i, i * 7) for i in range(400_000)))
    stored = tmp_path / "table.parquet"
    stored.write_bytes(b"PAR1" + bytes(range(256)) * 100)
    target = tmp_path / "out.zip"
    with ZipPackager(target) as packager:
        packager.add("table.csv", text)
        packager.add("table.parquet", stored)
    with zipfile.ZipFile(target) as z:
        assert z.testzip() is None  # every member's CRC checked
        assert z.read("table.csv") == text.read_bytes()
        info = z.getinfo("table.csv")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.compress_size < info.file_size / 2
        assert z.getinfo("table.parquet").compress_type == zipfile.ZIP_STORED
