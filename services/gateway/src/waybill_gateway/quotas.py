"""Quotas per user: stored bytes (live uploads plus completed artifacts), unfinished
batch exports, files per export. A user's own quota (set by an administrator) or the
deployment's default; 0 means none. Pure arithmetic: the numbers come from the
statements the create paths already run (see services/catalog.py, data_exports.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from waybill_gateway.settings import GatewaySettings
from waybill_shared.db.models import User

STORED_BYTES, RUNNING_EXPORTS, FILES_PER_EXPORT = (
    "stored_bytes",
    "running_exports",
    "files_per_export",
)


class QuotaExceeded(Exception):
    """Which quota, its limit, the use it would reach and by how much it is over.
    The HTTP status says what the caller can do: 413 (free space first), 429 (wait
    for an export to finish; Retry-After), 422 (ask for fewer files)."""

    STATUS = {STORED_BYTES: 413, RUNNING_EXPORTS: 429, FILES_PER_EXPORT: 422}

    def __init__(self, quota: str, *, limit: int, would_use: int, message: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit
        self.would_use = would_use

    @property
    def over_by(self) -> int:
        return self.would_use - self.limit

    @property
    def status_code(self) -> int:
        return self.STATUS[self.quota]

    def body(self) -> dict[str, Any]:
        return {
            "detail": str(self),
            "quota": self.quota,
            "limit": self.limit,
            "would_use": self.would_use,
            "over_by": self.over_by,
        }


@dataclass(frozen=True)
class Quotas:
    stored_bytes: int
    running_exports: int
    files_per_export: int

    @classmethod
    def of(cls, user: User, settings: GatewaySettings) -> Quotas:
        def pick(own: int | None, default: int) -> int:
            return default if own is None else own

        return cls(
            stored_bytes=pick(user.quota_stored_bytes, settings.quota_stored_bytes),
            running_exports=pick(user.quota_running_exports, settings.quota_running_exports),
            files_per_export=pick(user.quota_files_per_export, settings.max_files_per_export),
        )

    def check_files(self, requested: int) -> None:
        if self.files_per_export and requested > self.files_per_export:
            raise QuotaExceeded(
                FILES_PER_EXPORT,
                limit=self.files_per_export,
                would_use=requested,
                message=(
                    f"{requested} files requested; at most {self.files_per_export} per export "
                    f"(files-per-export quota; {requested - self.files_per_export} over)"
                ),
            )

    def check_running(self, running: int) -> None:
        """`running`: the user's unfinished exports before this one."""
        if self.running_exports and running + 1 > self.running_exports:
            raise QuotaExceeded(
                RUNNING_EXPORTS,
                limit=self.running_exports,
                would_use=running + 1,
                message=(
                    f"running-exports quota: {running} exports are pending or running, at "
                    f"most {self.running_exports} at a time; retry when one has finished"
                ),
            )

    def check_stored(self, stored: int, adding: int = 0) -> None:
        """`stored`: the bytes the user stores now; `adding`: what this request adds
        (an export's artifact is not known yet: a create is refused only once the
        quota is used up)."""
        if not self.stored_bytes:
            return
        total = stored + adding
        if total > self.stored_bytes or (adding == 0 and stored >= self.stored_bytes):
            over = max(total - self.stored_bytes, 0)
            raise QuotaExceeded(
                STORED_BYTES,
                limit=self.stored_bytes,
                would_use=total,
                message=(
                    f"stored-bytes quota of {_size(self.stored_bytes)}: you store {stored} bytes"
                    + (f", and this upload of {adding} bytes" if adding else "")
                    + (f" would be {over} bytes over" if over else " (the quota is used up)")
                    + "; delete files or exports to free space"
                ),
            )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"
