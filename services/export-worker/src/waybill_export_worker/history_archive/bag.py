"""A BagIt bag's tag files and the checks of a complete, valid bag."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from waybill_export_worker.history_archive.model import DatasetRecord
from waybill_export_worker.history_archive.placement import BAG_PAYLOAD
from waybill_export_worker.history_archive.safety import UnsafeArchive


class Bag:
    """A BagIt bag's tag files, and the checks RFC 8493 asks of a complete, valid bag:
    bagit.txt, a sha256 manifest listing every payload file (and nothing else) with its
    checksum, and the sha256 tag manifest's checksums of the tag files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tags: dict[str, bytes] = {}

    def check(
        self,
        payload_members: Iterable[str],
        digest_of: Callable[[str], str],
        datasets: dict[str, DatasetRecord],
    ) -> None:
        """`payload_members`: the archive's members under data/ (named within the
        layout); `digest_of`: a member's sha256; `datasets`: the dataset members'
        records."""
        if "bagit.txt" not in self.tags:
            raise UnsafeArchive(f"bag {self.name!r} has no bagit.txt")
        if not self.tags["bagit.txt"].startswith(b"BagIt-Version: "):
            raise UnsafeArchive(f"bag {self.name!r}: bagit.txt does not declare a BagIt-Version")
        if "manifest-sha256.txt" not in self.tags:
            raise UnsafeArchive(f"bag {self.name!r} has no manifest-sha256.txt")
        manifest = self._manifest("manifest-sha256.txt")
        payload = {BAG_PAYLOAD + m for m in payload_members}
        for path in sorted(payload ^ set(manifest)):
            where = "missing from the manifest" if path in payload else "missing from the bag"
            raise UnsafeArchive(f"bag {self.name!r}: {path} is {where}")
        for path, sha256 in manifest.items():
            member = path.removeprefix(BAG_PAYLOAD)
            record = datasets.get(member)
            # A dataset file is checked against its record (verify_files); the record
            # and the manifest must agree. Everything else is hashed here.
            actual = record.file.sha256 if record is not None else digest_of(member)
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
