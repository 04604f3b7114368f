"""Catalog queries the export worker needs (read-only: the tracker owns task state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import Dataset, History, StoredFile, User
from waybill_shared.db.queries import among
from waybill_shared.errors import NotFound


@dataclass(frozen=True)
class ExportItem:
    """One file to export: a catalog file, or the file behind a history dataset."""

    file_id: int
    dataset_id: int | None
    filename: str
    storage_key: str
    size: int
    sha256: str
    format: str
    uploaded_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


async def load_export_items(
    session: AsyncSession, *, owner_id: int, file_ids: list[int], dataset_ids: list[int]
) -> list[ExportItem]:
    """The items in request order, after checking `owner_id` may read each one."""
    user = await session.get(User, owner_id)
    if user is None:
        raise NotFound(f"user {owner_id} does not exist")
    files = {
        f.id: f
        for f in (
            await session.execute(
                select(StoredFile).where(
                    among(StoredFile.id, file_ids), StoredFile.deleted_at.is_(None)
                )
            )
        ).scalars()
    }
    items: list[ExportItem] = []
    for file_id in file_ids:
        f = files.get(file_id)
        if f is None or (f.owner_id != owner_id and not user.is_admin):
            raise NotFound(f"file {file_id} not found")
        items.append(_item(f, None, f.filename))
    if dataset_ids:
        rows = (
            await session.execute(
                select(Dataset, History.owner_id, StoredFile)
                .join(History, History.id == Dataset.history_id)
                .join(StoredFile, StoredFile.id == Dataset.file_id)
                .where(among(Dataset.id, dataset_ids))
            )
        ).all()
        by_id = {d.id: (d, hist_owner, f) for d, hist_owner, f in rows}
        for dataset_id in dataset_ids:
            found = by_id.get(dataset_id)
            if found is None or (found[1] != owner_id and not user.is_admin):
                raise NotFound(f"dataset {dataset_id} not found")
            dataset, _, f = found
            name = dataset.name if "." in dataset.name else f"{dataset.name}.{dataset.extension}"
            items.append(_item(f, dataset.id, name))
    return items


def _item(f: StoredFile, dataset_id: int | None, filename: str) -> ExportItem:
    return ExportItem(
        file_id=f.id,
        dataset_id=dataset_id,
        filename=filename,
        storage_key=f.storage_key,
        size=f.size,
        sha256=f.sha256,
        format=f.format,
        uploaded_at=f.uploaded_at,
        metadata=dict(f.metadata_ or {}),
    )
