"""Reading an archive back for re-import, refusing anything unsafe or inconsistent.

Every format but bco.json re-imports: rocrate.zip, tar.gz (= tgz), tar, and the BagIt
bags bag.zip, bag.tar, bag.tgz, told apart by their first bytes and their layout.
`read_archive` looks at every member before it answers: names (no absolute paths, no
'..', no control characters, nothing outside the layout, no duplicates), types (regular
files only: no links, devices, directories), sizes (member count, total expanded size,
compression ratio: a decompression bomb stops as soon as it shows), integrity (corrupt
or truncated archives, CRCs, a bag's manifests), the snapshot document (present,
bounded, valid), and, by default, every dataset file's size and sha256 against its
record. Nothing is written to disk: `extract_dataset` streams one file to a path the
caller chooses, checking it again.

The checks of names and limits are `safety`; where members belong, `placement`; the
zip and tar readers (`zip_reader`, `tar_reader`) answer `archive_reader.ArchiveReader`.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from pydantic import ValidationError

from waybill_export_worker.history_archive.archive_reader import ArchiveReader
from waybill_export_worker.history_archive.codec import (
    FORMAT_VERSION,
    InvalidSnapshot,
    check_snapshot,
    from_json,
    workflow_member,
)
from waybill_export_worker.history_archive.model import HistorySnapshot
from waybill_export_worker.history_archive.safety import (
    CORRUPT,
    ArchiveLimits,
    UnsafeArchive,
    copy_checked,
)
from waybill_export_worker.history_archive.tar_reader import TarReader
from waybill_export_worker.history_archive.zip_reader import ZipReader


class OpenedArchive:
    """The snapshot of an archive that passed every check, and its dataset files.
    A context manager: closing it closes the archive."""

    def __init__(
        self, snapshot: HistorySnapshot, files: dict[int, str], reader: ArchiveReader
    ) -> None:
        self.snapshot = snapshot
        self.format = reader.fmt  # "rocrate.zip", "tar.gz", "bag.zip"...
        self.files = files  # dataset id -> member, for the datasets whose file is included
        self._reader = reader
        self._records = {d.id: d for d in snapshot.datasets}

    def has_file(self, dataset_id: int) -> bool:
        return dataset_id in self.files

    def extract_dataset(self, dataset_id: int, dest: Path) -> bool:
        """Stream one dataset's file to dest (created or replaced); False, and dest left
        alone, when the archive has no file for it (include_files=false, or not a dataset
        of the snapshot). Raises UnsafeArchive, and removes dest, when the bytes do not
        match the record or the archive turns out corrupt."""
        member = self.files.get(dataset_id)
        if member is None:
            return False
        record = self._records[dataset_id]
        try:
            with self._reader.open_member(member) as src, dest.open("wb") as out:
                copy_checked(record, member, src, out.write)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return True

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> OpenedArchive:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_archive(path: Path, *, limits: ArchiveLimits | None = None) -> OpenedArchive:
    """Open a history archive in any re-importable format (told apart by its first
    bytes and its layout), check it, and answer its snapshot. Raises UnsafeArchive
    saying why it was refused; a bco.json is refused as the description it is."""
    limits = limits or ArchiveLimits()
    with path.open("rb") as f:
        head = f.read(512)
    if head[:2] == b"PK":
        reader: ArchiveReader = ZipReader(path, limits)
    elif head[:2] == b"\x1f\x8b":
        reader = TarReader(path, limits, compressed=True)
    elif head[257:262] == b"ustar":
        reader = TarReader(path, limits, compressed=False)
    elif head.lstrip()[:1] == b"{":
        raise UnsafeArchive(
            "a JSON document, not an archive: a bco.json (BioCompute Object) describes a "
            "history and cannot be re-imported; export it as rocrate.zip, tar.gz, tgz, tar, "
            "bag.zip, bag.tar or bag.tgz to re-import it"
        )
    else:
        raise UnsafeArchive("not a history archive: neither a zip nor a (gzipped) tar file")
    try:
        reader.scan()
        document, files = reader.document()
        if not isinstance(document, dict):
            raise UnsafeArchive("invalid history snapshot: not a JSON object")
        version = document.pop("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise UnsafeArchive(
                f"history archive format version {version!r}; this reader knows {FORMAT_VERSION}"
            )
        try:
            snapshot = from_json(document)
            check_snapshot(snapshot)
        except ValidationError as exc:
            error = exc.errors()[0]
            location = ".".join(str(part) for part in error["loc"])
            raise UnsafeArchive(f"invalid history snapshot: {error['msg']} at {location}") from exc
        except InvalidSnapshot as exc:
            raise UnsafeArchive(f"invalid history snapshot: {exc}") from exc
        records = {d.id: d for d in snapshot.datasets}
        referenced: dict[str, int] = {}
        for dataset_id, member in files.items():
            if dataset_id not in records:
                raise UnsafeArchive(f"{member} belongs to no dataset of the snapshot")
            if member in referenced:
                raise UnsafeArchive(f"{member} is the file of two datasets")
            if member not in reader.dataset_members:
                raise UnsafeArchive(f"{member}, the file of dataset {dataset_id}, is missing")
            referenced[member] = dataset_id
        for member in reader.dataset_members:
            if member not in referenced:
                raise UnsafeArchive(f"{member} is not the file of any dataset of the snapshot")
        workflows = {workflow_member(w) for w in snapshot.workflows}
        for member in reader.workflow_members:
            if member not in workflows:
                raise UnsafeArchive(f"{member} is not the document of any workflow of the snapshot")
        if reader.bag is not None:
            reader.bag.check(
                reader.payload_members(),
                reader.sha256,
                {m: records[i] for m, i in referenced.items()},
            )
        if limits.verify_files:
            reader.verify({member: records[i] for member, i in referenced.items()})
    except UnsafeArchive:
        reader.close()
        raise
    except CORRUPT as exc:
        reader.close()
        raise UnsafeArchive(f"corrupt or truncated archive: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reader.close()
        raise UnsafeArchive(f"invalid archive metadata: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        reader.close()
        raise
    return OpenedArchive(snapshot, files, reader)
