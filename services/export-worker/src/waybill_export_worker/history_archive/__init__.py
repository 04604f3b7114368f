"""History archives: a history snapshot written in one of Galaxy's model store formats
(`rocrate.zip`, an RO-Crate 1.1 / Process Run Crate; `tar.gz` = `tgz` and `tar`, a
documented layout; `bag.zip`, `bag.tar`, `bag.tgz`, BagIt bags of that layout;
`bco.json`, a BioCompute Object that describes only) and read back safely. Pure: no
broker, database or storage code. Layouts and limits: services/export-worker/HISTORY_ARCHIVE.md."""

from waybill_export_worker.history_archive.codec import InvalidSnapshot
from waybill_export_worker.history_archive.reader import OpenedArchive, read_archive
from waybill_export_worker.history_archive.safety import ArchiveLimits, UnsafeArchive
from waybill_export_worker.history_archive.writer import (
    FORMATS,
    ArchiveFormat,
    ArchiveSummary,
    DatasetFileMismatch,
    write_archive,
)

__all__ = [
    "FORMATS",
    "ArchiveFormat",
    "ArchiveLimits",
    "ArchiveSummary",
    "DatasetFileMismatch",
    "InvalidSnapshot",
    "OpenedArchive",
    "UnsafeArchive",
    "read_archive",
    "write_archive",
]
