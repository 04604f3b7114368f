"""Archive safety, direct: member names, the expansion budget and ratio, corrupt data,
and a member's bytes against its record."""

from __future__ import annotations

import hashlib
import io
import zlib

import pytest

from waybill_export_worker.history_archive.model import DatasetRecord, FileRecord
from waybill_export_worker.history_archive.safety import (
    ArchiveLimits,
    UnsafeArchive,
    check_expanded_total,
    check_member_name,
    check_ratio,
    copy_checked,
    read_chunk,
)


@pytest.mark.parametrize(
    "name", ["waybill-history.json", "datasets/1_a.csv", "data/x", "a..b", "ümlaut"]
)
def test_safe_names_pass(name: str) -> None:
    check_member_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "an empty name"),
        ("a\nb", "control characters"),
        ("a\u200bb", "control characters"),  # a format character (Cf)
        ("/etc/passwd", "absolute path"),
        ("C:x", "absolute path"),
        ("a\\b", "backslash"),
        ("../x", r"outside the archive \('..'\)"),
        ("a/../../x", r"outside the archive \('..'\)"),
    ],
)
def test_unsafe_names_are_refused_saying_why(name: str, reason: str) -> None:
    with pytest.raises(UnsafeArchive, match=reason):
        check_member_name(name)


LIMITS = ArchiveLimits(max_total_bytes=1000, max_ratio=10, ratio_floor_bytes=100)


def test_the_expanded_total_may_reach_the_budget_not_pass_it() -> None:
    check_expanded_total(1000, LIMITS)
    with pytest.raises(UnsafeArchive, match="expands past 1000 bytes: a decompression bomb"):
        check_expanded_total(1001, LIMITS)


@pytest.mark.parametrize(
    ("expanded", "compressed", "refused"),
    [
        (100, 1, False),  # under the floor, whatever the ratio
        (101, 11, False),  # 9x
        (110, 11, False),  # 10x: at most, allowed
        (111, 11, True),
        (101, 0, True),  # nothing compressed counts as one byte
    ],
)
def test_the_ratio_is_checked_past_the_floor(expanded: int, compressed: int, refused: bool) -> None:
    if not refused:
        check_ratio("member 'm'", expanded, compressed, LIMITS)
        return
    ratio = expanded // max(compressed, 1)
    with pytest.raises(
        UnsafeArchive, match=rf"member 'm' expands {ratio}x \(at most 10x\): a decompression bomb"
    ):
        check_ratio("member 'm'", expanded, compressed, LIMITS)


class Broken(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise zlib.error("invalid distance too far back")


def test_corrupt_data_is_an_unsafe_archive() -> None:
    with pytest.raises(UnsafeArchive, match="corrupt or truncated archive while reading m: "):
        read_chunk("m", Broken())


def record(data: bytes) -> DatasetRecord:
    file = FileRecord(sha256=hashlib.sha256(data).hexdigest(), size=len(data), format="txt")
    return DatasetRecord(
        id=1,
        hid=1,
        name="m",
        extension="txt",
        state="ok",
        visible=True,
        deleted=False,
        copied_from_id=None,
        creating_job_id=None,
        file=file,
    )


def test_a_member_is_copied_when_its_bytes_match_its_record() -> None:
    out = io.BytesIO()
    copy_checked(record(b"hello"), "m", io.BytesIO(b"hello"), out.write)
    assert out.getvalue() == b"hello"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello!", r"larger than its record says \(5 bytes\)"),
        (b"hell", r"m has 4 bytes; its record says 5 \(truncated\?\)"),
        (b"HELLO", "does not match the sha256 of its record"),
    ],
)
def test_a_member_that_does_not_match_its_record_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(UnsafeArchive, match=reason):
        copy_checked(record(b"hello"), "m", io.BytesIO(data), None)
