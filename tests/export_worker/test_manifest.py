"""export_metadata.json carries the seed's documented fields, with ours beside them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from waybill_export_worker.manifest import MANIFEST_VERSION, build_manifest
from waybill_export_worker.repository import ExportItem
from waybill_shared.contracts.messages import DataExportRequested, ItemResult

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
UPLOADED = datetime(2026, 2, 27, 17, 5, tzinfo=UTC)


def item(
    file_id: int, dataset_id: int | None, name: str, size: int, fmt: str, **kw: Any
) -> ExportItem:
    return ExportItem(
        file_id=file_id,
        dataset_id=dataset_id,
        filename=name,
        storage_key=f"files/{file_id}",
        size=size,
        sha256="ab" * 32,
        format=fmt,
        uploaded_at=UPLOADED,
        **kw,
    )


def manifest() -> dict[str, object]:
    command = DataExportRequested(
        task_id=uuid.uuid4(),
        owner_id=3,
        name="RNA-seq counts",
        file_ids=[11],
        dataset_ids=[21],
        export_format="parquet",
        job_key="weekly-7",
    )
    items = [
        item(11, None, "counts.csv", 120, "csv", metadata={"k": 1}),
        item(12, 21, "reads.tsv", 80, "tsv"),
    ]
    results = [
        ItemResult(
            file_id=11,
            filename="counts.csv",
            status="completed",
            output_name="counts.parquet",
            size=99,
        ),
        ItemResult(file_id=12, dataset_id=21, filename="reads.tsv", status="failed", error="bad"),
    ]
    return build_manifest(
        request=command,
        task=SimpleNamespace(id=7, created_at=CREATED),  # type: ignore[arg-type]
        items=items,
        results=results,
        exported_at=CREATED,
        lineage=None,
    )


def test_export_info_and_files_in_the_seeds_shape() -> None:
    document = manifest()
    assert document["manifest_version"] == MANIFEST_VERSION == 2
    info = document["export_info"]
    assert isinstance(info, dict)
    assert {k: info[k] for k in ("job_key", "name", "created_at", "format")} == {
        "job_key": "weekly-7",
        "name": "RNA-seq counts",
        "created_at": "2026-03-01T09:30:00+00:00",
        "format": "parquet",
    }
    assert info["exported_files"] == 1 and info["failed_files"] == 1 and info["job_id"] == 7
    files = document["files"]
    assert isinstance(files, list)
    assert [
        {k: f[k] for k in ("id", "filename", "size", "uploaded_at", "metadata")} for f in files
    ] == [
        {
            "id": 11,
            "filename": "counts.csv",
            "size": 120,
            "uploaded_at": "2026-02-27T17:05:00+00:00",
            "metadata": {"k": 1},
        },
        {
            "id": 12,
            "filename": "reads.tsv",
            "size": 80,
            "uploaded_at": "2026-02-27T17:05:00+00:00",
            "metadata": {},
        },
    ]
    # Ours beside them: where the file came from and what became of it.
    assert files[0]["output_name"] == "counts.parquet" and files[0]["output_size"] == 99
    assert files[1]["dataset_id"] == 21 and files[1]["error"] == "bad"
    assert "lineage" not in document
