"""Archive safety, direct: member names, the expansion budget and ratio, corrupt data,
and a member's bytes against its record."""

from __future__ import annotations

import io
import zlib
from typing import Any

import pytest

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


def test_a_member_is_copied_when_its_bytes_match_its_record(built: Any) -> None:
    record = built.snapshot.datasets[0]
    data = built.files[record.id].read_bytes()
    out = io.BytesIO()
    copy_checked(record, "m", io.BytesIO(data), out.write)
    assert out.getvalue() == data


def test_a_member_that_does_not_match_its_record_is_refused(built: Any) -> None:
    record = built.snapshot.datasets[0]
    data = built.files[record.id].read_bytes()
    size = len(data)
    for wrong, reason in (
        (data + b"!", rf"m is larger than its record says \({size} bytes\)"),
        (data[:-1], rf"m has {size - 1} bytes; its record says {size} \(truncated\?\)"),
        (data[::-1], "m does not match the sha256 of its record"),
    ):
        with pytest.raises(UnsafeArchive, match=reason):
            copy_checked(record, "m", io.BytesIO(wrong), None)
