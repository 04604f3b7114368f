"""read_archive refuses crafted archives, each with a message that says why."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from waybill_export_worker.history_archive import (
    ArchiveLimits,
    UnsafeArchive,
    read_archive,
    write_archive,
)

ZEROS = 50 * 1024 * 1024  # the bomb: 50 MiB of zeros, about 50 KiB compressed


def good(tmp_path: Path, built: Any, fmt: str) -> Path:
    target = tmp_path / f"good.{fmt}"
    write_archive(built.snapshot, fmt=fmt, target=target, dataset_file=built.dataset_file)  # type: ignore[arg-type]
    return target


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def make_zip(
    path: Path, members: dict[str, bytes], extra: Callable[[zipfile.ZipFile], None] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if extra:
            extra(z)
    return path


def tar_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as t:
        out = []
        for m in t.getmembers():
            f = t.extractfile(m)
            out.append((m, f.read() if f else b""))
        return out


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=9) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def tar_info(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, data


def assert_refused(path: Path, match: str, **limits: Any) -> None:
    with pytest.raises(UnsafeArchive, match=match):
        read_archive(path, limits=ArchiveLimits(**limits))


# --- zip (rocrate.zip) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../x", r"outside the archive \('\.\.'\)"),
        ("datasets/../../x", r"outside the archive"),
        ("/etc/cron.d/x", "absolute path"),
        ("C:/windows/x", "absolute path"),
        ("datasets\\..\\x", "backslash"),
        ("\\\\server\\share", "backslash"),
        ("other/x", "not part of the history archive layout"),
        ("datasets/sub/x", "not part of the history archive layout"),
        ("datasets/.hidden", "not part of the history archive layout"),
        ("datasets/1_x\x1b[31m", "control characters"),
    ],
)
def test_zip_member_names(tmp_path: Path, built: Any, name: str, message: str) -> None:
    members = zip_members(good(tmp_path, built, "rocrate.zip"))
    assert_refused(make_zip(tmp_path / "bad.zip", {**members, name: b"x"}), message)


def test_zip_links_directories_and_duplicates(tmp_path: Path, built: Any) -> None:
    members = zip_members(good(tmp_path, built, "rocrate.zip"))

    def symlink(z: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("datasets/999_link")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")

    assert_refused(make_zip(tmp_path / "a.zip", members, symlink), "not a regular file")

    def directory(z: zipfile.ZipFile) -> None:
        z.writestr(zipfile.ZipInfo("datasets/"), b"")

    assert_refused(
        make_zip(tmp_path / "b.zip", members, directory), "not part of|not a regular file"
    )

    def duplicate(z: zipfile.ZipFile) -> None:
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("waybill-history.json", b"{}")

    assert_refused(make_zip(tmp_path / "c.zip", members, duplicate), "appears twice")


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    return make_zip(path.with_suffix(".zip"), members)


def tar_gz_of(path: Path, members: dict[str, bytes]) -> Path:
    return make_tar(path.with_suffix(".tar.gz"), [tar_info(n, d) for n, d in members.items()])


@pytest.mark.parametrize(
    ("make", "too_many"),
    [(zip_of, "20 members; at most 10"), (tar_gz_of, "more than 10 members")],
    ids=["zip", "tar"],
)
def test_bomb_ratio_total_size_and_member_count(
    tmp_path: Path, make: Callable[[Path, dict[str, bytes]], Path], too_many: str
) -> None:
    """Zip: per member, from the central directory; tar.gz: the running ratio of the
    one gzip stream. Either way the bomb stops before it is expanded."""
    bomb = make(tmp_path / "bomb", {"datasets/1_zeros": bytes(ZEROS)})
    assert bomb.stat().st_size < ZEROS / 500
    assert_refused(
        bomb,
        r"expands \d+x \(at most 100x\): a decompression bomb",
        max_ratio=100,
        ratio_floor_bytes=2**20,
    )
    assert_refused(bomb, "expands past 1048576 bytes", max_total_bytes=1024 * 1024, max_ratio=10**9)
    many = make(tmp_path / "many", {f"datasets/{i}_x": b"" for i in range(20)})
    assert_refused(many, too_many, max_members=10)


def test_zip_overlapping_members_are_a_bomb(tmp_path: Path) -> None:
    """The non-recursive zip bomb: central directory entries sharing the same data."""
    path = make_zip(
        tmp_path / "overlap.zip", {"datasets/1_aa": b"a" * 100, "datasets/2_bb": b"a" * 100}
    )
    data = bytearray(path.read_bytes())
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)  # the second entry's local header offset
    path.write_bytes(bytes(data))
    assert_refused(path, "overlap: a decompression bomb")


def test_zip_corrupt_or_truncated(tmp_path: Path, built: Any) -> None:
    archive = good(tmp_path, built, "rocrate.zip")
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(truncated, "corrupt or truncated")
    # Flip bytes inside the deflated data of a dataset member: CRC or deflate error.
    with zipfile.ZipFile(archive) as z:
        info = next(i for i in z.infolist() if i.filename.startswith("datasets/105_"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 50
    damaged = bytearray(data)
    damaged[start : start + 64] = bytes(64)
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    assert_refused(tmp_path / "damaged.zip", "corrupt")
    # Not verified when opening: extracting it says so, and leaves no partial file.
    with read_archive(tmp_path / "damaged.zip", limits=ArchiveLimits(verify_files=False)) as opened:
        with pytest.raises(UnsafeArchive, match="corrupt"):
            opened.extract_dataset(105, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    assert_refused(plain, r"neither a zip nor a \(gzipped\) tar file")


def test_zip_missing_or_invalid_metadata(tmp_path: Path, built: Any) -> None:
    members = zip_members(good(tmp_path, built, "rocrate.zip"))
    snapshot = json.loads(members["waybill-history.json"])
    cases: list[tuple[dict[str, bytes], str]] = [
        (
            {k: v for k, v in members.items() if k != "waybill-history.json"},
            "waybill-history.json is missing",
        ),
        (
            {k: v for k, v in members.items() if k != "ro-crate-metadata.json"},
            "ro-crate-metadata.json is missing",
        ),
        ({**members, "ro-crate-metadata.json": b"[]"}, "not RO-Crate metadata"),
        ({**members, "waybill-history.json": b"{not json"}, "not valid JSON"),
        ({**members, "waybill-history.json": b"[" * 100_000 + b"]" * 100_000}, "not valid JSON"),
        ({**members, "waybill-history.json": b'{"history": 1}'}, "invalid history snapshot"),
        (
            {
                **members,
                "waybill-history.json": json.dumps({**snapshot, "format_version": 99}).encode(),
            },
            "format version 99",
        ),
        (
            {
                **members,
                "waybill-history.json": json.dumps(
                    {**snapshot, "datasets": snapshot["datasets"] * 2}
                ).encode(),
            },
            "dataset id 101 appears twice",
        ),
        (
            {
                **members,
                "waybill-history.json": json.dumps(
                    {**snapshot, "files": {**snapshot["files"], "999": "datasets/1_x"}}
                ).encode(),
            },
            "belongs to no dataset",
        ),
        (
            {k: v for k, v in members.items() if not k.startswith("datasets/103_")},
            r"the file of dataset 103, is missing",
        ),
        ({**members, "datasets/7_stowaway": b"x"}, "not the file of any dataset"),
    ]
    for i, (contents, message) in enumerate(cases):
        assert_refused(make_zip(tmp_path / f"m{i}.zip", contents), message)
    assert_refused(
        make_zip(tmp_path / "big.zip", members), "larger than 1000 bytes", max_metadata_bytes=1000
    )


@pytest.mark.parametrize("fmt", ["rocrate.zip", "tar.gz"])
def test_file_not_matching_its_sha256(tmp_path: Path, built: Any, fmt: str) -> None:
    archive = good(tmp_path, built, fmt)
    tampered = tmp_path / f"tampered.{fmt}"
    if fmt == "rocrate.zip":
        make_zip(
            tampered,
            {
                n: d.replace(b"read", b"READ") if n.startswith("datasets/") else d
                for n, d in zip_members(archive).items()
            },
        )
    else:
        make_tar(
            tampered,
            [
                (i, d.replace(b"read", b"READ") if i.name.startswith("datasets/") else d)
                for i, d in tar_members(archive)
            ],
        )
    assert_refused(tampered, "does not match the sha256 of its record")
    with read_archive(tampered, limits=ArchiveLimits(verify_files=False)) as opened:
        assert opened.extract_dataset(103, tmp_path / "fine")  # untouched: no "read" in it
        with pytest.raises(UnsafeArchive, match="sha256"):
            opened.extract_dataset(101, tmp_path / "out")
        assert not (tmp_path / "out").exists()


# --- tar.gz ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            tar_info("datasets/9_link", kind=tarfile.SYMTYPE, link="/etc/passwd"),
            "not a regular file",
        ),
        (
            tar_info("datasets/9_hard", kind=tarfile.LNKTYPE, link="history.json"),
            "not a regular file",
        ),
        (tar_info("datasets/9_dev", kind=tarfile.CHRTYPE), "not a regular file"),
        (tar_info("datasets/9_fifo", kind=tarfile.FIFOTYPE), "not a regular file"),
        (tar_info("datasets/9_dir", kind=tarfile.DIRTYPE), "not a regular file"),
        (tar_info("../../x", b"x"), "outside the archive"),
        (tar_info("/etc/x", b"x"), "absolute path"),
        (tar_info("./history.json", b"{}"), "not part of the history archive layout"),
        (tar_info("history.json", b"{}"), "appears twice"),
    ],
)
def test_tar_members(
    tmp_path: Path, built: Any, entry: tuple[tarfile.TarInfo, bytes], message: str
) -> None:
    members = tar_members(good(tmp_path, built, "tar.gz"))
    assert_refused(make_tar(tmp_path / "bad.tar.gz", [entry, *members]), message)


def test_tar_corrupt_truncated_or_incomplete(tmp_path: Path, built: Any) -> None:
    archive = good(tmp_path, built, "tar.gz")
    data = archive.read_bytes()
    (tmp_path / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    assert_refused(tmp_path / "truncated.tar.gz", "corrupt or truncated")
    damaged = bytearray(data)
    damaged[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    (tmp_path / "damaged.tar.gz").write_bytes(bytes(damaged))
    assert_refused(tmp_path / "damaged.tar.gz", "corrupt or truncated")
    (tmp_path / "not-a-tar.gz").write_bytes(gzip.compress(b"hello " * 1000))
    assert_refused(tmp_path / "not-a-tar.gz", "corrupt or truncated|empty archive")
    members = tar_members(archive)
    without = [(i, d) for i, d in members if i.name != "jobs.json"]
    assert_refused(make_tar(tmp_path / "nojobs.tar.gz", without), "jobs.json is missing")
    bad_json = [(i, b"{]" if i.name == "collections.json" else d) for i, d in members]
    for info, d in bad_json:
        info.size = len(d)
    assert_refused(
        make_tar(tmp_path / "badjson.tar.gz", bad_json), "collections.json is not valid JSON"
    )
