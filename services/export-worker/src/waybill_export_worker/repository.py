"""Catalog queries the export worker needs (read-only: the tracker owns task state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from waybill_shared.db.pg import Connection, from_json
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
    metadata: dict[str, Any] = field(default_factory=dict)
    uploaded_at: Any = None
    missing: bool = False  # the storage reconcile found its bytes gone


async def load_export_items(
    conn: Connection, *, owner_id: int, file_ids: list[int], dataset_ids: list[int]
) -> list[ExportItem]:
    """The items in request order, after checking `owner_id` may read each one: one
    statement for the user and the files (a tiny export's whole check)."""
    rows = await conn.fetch(
        """SELECT u.is_admin, f.id, f.owner_id, f.filename, f.storage_key, f.size, f.sha256,
                  f.format, f.metadata, f.uploaded_at, f.missing_at
           FROM users u
           LEFT JOIN files f ON f.id = ANY($2::int[]) AND f.deleted_at IS NULL
           WHERE u.id = $1""",
        owner_id,
        file_ids,
    )
    if not rows:
        raise NotFound(f"user {owner_id} does not exist")
    is_admin = rows[0]["is_admin"]
    files = {r["id"]: r for r in rows if r["id"] is not None}
    items: list[ExportItem] = []
    for file_id in file_ids:
        f = files.get(file_id)
        if f is None or (f["owner_id"] != owner_id and not is_admin):
            raise NotFound(f"file {file_id} not found")
        items.append(_item(f, None, f["filename"]))
    if dataset_ids:
        found = {
            r["dataset_id"]: r
            for r in await conn.fetch(
                """SELECT d.id AS dataset_id, d.name AS dataset_name, d.extension,
                          h.owner_id AS history_owner, f.id, f.filename, f.storage_key, f.size,
                          f.sha256, f.format, f.metadata, f.uploaded_at, f.missing_at
                   FROM datasets d JOIN histories h ON h.id = d.history_id
                   JOIN files f ON f.id = d.file_id
                   WHERE d.id = ANY($1::int[])""",
                dataset_ids,
            )
        }
        for dataset_id in dataset_ids:
            d = found.get(dataset_id)
            if d is None or (d["history_owner"] != owner_id and not is_admin):
                raise NotFound(f"dataset {dataset_id} not found")
            name = d["dataset_name"]
            items.append(_item(d, dataset_id, name if "." in name else f"{name}.{d['extension']}"))
    return items


def _item(f: Any, dataset_id: int | None, filename: str) -> ExportItem:
    return ExportItem(
        file_id=f["id"],
        dataset_id=dataset_id,
        filename=filename,
        storage_key=f["storage_key"],
        size=f["size"],
        sha256=f["sha256"],
        format=f["format"],
        metadata=from_json(f["metadata"]) or {},
        uploaded_at=f["uploaded_at"],
        missing=f["missing_at"] is not None,
    )
