"""History archives: a history snapshot written as `rocrate.zip` (an RO-Crate 1.1,
Process Run Crate) or `tar.gz` (a documented layout), and read back safely. Pure: no
broker, database or storage code. Layouts and limits: services/export-worker/HISTORY_ARCHIVE.md."""

from waybill_export_worker.history_archive.codec import InvalidSnapshot
from waybill_export_worker.history_archive.reader import (
    ArchiveLimits,
    OpenedArchive,
    UnsafeArchive,
    read_archive,
)
from waybill_export_worker.history_archive.writer import (
    ArchiveSummary,
    DatasetFileMismatch,
    write_archive,
)

__all__ = [
    "ArchiveLimits",
    "ArchiveSummary",
    "DatasetFileMismatch",
    "InvalidSnapshot",
    "OpenedArchive",
    "UnsafeArchive",
    "read_archive",
    "write_archive",
]
