"""What `read_archive` asks of a zip or a tar reader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, Protocol

from waybill_export_worker.history_archive.bag import Bag
from waybill_export_worker.history_archive.model import DatasetRecord


class ArchiveReader(Protocol):
    """One archive, read in two steps: `scan` checks every member (names, types,
    sizes, bomb limits) and keeps what the snapshot needs; then `document` answers the
    snapshot and the members are verified, hashed or opened by their names within
    the layout. Raises UnsafeArchive, or one of safety.CORRUPT for a damaged file."""

    @property
    def fmt(self) -> str:
        """The archive format, as the export names it ("rocrate.zip", "bag.tgz"...)."""
        ...

    @property
    def bag(self) -> Bag | None:
        """The BagIt bag the members lie in; None for a plain archive."""
        ...

    @property
    def dataset_members(self) -> Mapping[str, object]:
        """The dataset files, by name within the layout."""
        ...

    @property
    def workflow_members(self) -> Mapping[str, object]: ...

    def scan(self) -> None: ...

    def document(self) -> tuple[Any, dict[int, str]]:
        """The snapshot document (not yet validated), and the dataset files it names."""
        ...

    def payload_members(self) -> list[str]:
        """Every member of the layout (a bag's payload), by name within the layout."""
        ...

    def sha256(self, member: str) -> str: ...

    def verify(self, records: dict[str, DatasetRecord]) -> None:
        """Every dataset file's size and sha256 against its record."""
        ...

    def open_member(self, name: str) -> IO[bytes]: ...

    def close(self) -> None: ...
