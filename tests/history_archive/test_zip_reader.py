"""The member count a zip declares at its end, read as zipfile reads it (with no
private zipfile call) before zipfile parses a central directory that could be huge."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from waybill_export_worker.history_archive import ArchiveLimits, UnsafeArchive, read_archive
from waybill_export_worker.history_archive.zip_reader import declared_member_count


def make_zip(path: Path, count: int, comment: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for i in range(count):
            z.writestr(f"datasets/{i}_x", b"x")
        z.comment = comment
    return path


def declared(path: Path) -> int:
    with path.open("rb") as f:
        return declared_member_count(f)


@pytest.mark.parametrize("comment", [b"", b"a comment", b"c" * 0xFFFF])
def test_the_count_of_a_zip_with_or_without_a_comment(tmp_path: Path, comment: bytes) -> None:
    path = make_zip(tmp_path / "a.zip", 7, comment)
    assert declared(path) == 7
    with zipfile.ZipFile(path) as z:
        assert len(z.infolist()) == 7 and z.comment == comment


def test_a_signature_inside_the_comment_is_taken_for_the_record_as_zipfile_takes_it(
    tmp_path: Path,
) -> None:
    path = make_zip(tmp_path / "a.zip", 7, b"PK\x05\x06" + b"x" * 100)
    assert declared(path) != 7
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path)
    with pytest.raises(UnsafeArchive, match="corrupt or truncated archive"):
        read_archive(path)


def zip64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> tuple[Path, int, int]:
    """A zip with zip64 end records, the classic record's count 0xFFFF as in one with
    more than 65,535 members; the offsets of both records."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 5)  # zipfile then writes zip64
    path = make_zip(tmp_path / "z64.zip", count)
    monkeypatch.undo()
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    record = data.rindex(b"PK\x06\x06")
    struct.pack_into("<HH", data, end + 8, 0xFFFF, 0xFFFF)
    path.write_bytes(bytes(data))
    return path, end, record


def test_the_zip64_record_gives_the_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = zip64(tmp_path, monkeypatch, 20)
    assert declared(path) == 20
    with zipfile.ZipFile(path) as z:
        assert len(z.infolist()) == 20


def test_a_huge_declared_count_is_refused_before_zipfile_reads_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, record = zip64(tmp_path, monkeypatch, 20)
    data = bytearray(path.read_bytes())
    struct.pack_into("<QQ", data, record + 24, 300_000, 300_000)
    path.write_bytes(bytes(data))
    assert declared(path) == 300_000
    with pytest.raises(UnsafeArchive, match="300000 members; at most 10"):
        read_archive(path, limits=ArchiveLimits(max_members=10))


def test_a_zip_that_spans_disks_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, end, _ = zip64(tmp_path, monkeypatch, 20)
    data = bytearray(path.read_bytes())
    struct.pack_into("<L", data, end - 20 + 16, 2)  # the locator's total number of disks
    path.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile, match="span multiple disks"):
        declared(path)
    with pytest.raises(UnsafeArchive, match=r"corrupt or truncated archive: .*span multiple disks"):
        read_archive(path)


@pytest.mark.parametrize("data", [b"", b"PK", b"PK\x03\x04" + b"\0" * 100])
def test_no_end_record_is_no_zip(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(data)
    with pytest.raises(zipfile.BadZipFile, match="no end of central directory record"):
        declared(path)
