"""export_metadata.json: what was exported, from where, and (optionally) how each
dataset was made. Pure: built from the request, the items and their results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from waybill_export_worker.repository import ExportItem
from waybill_shared.contracts.messages import DataExportRequested, ItemResult
from waybill_shared.tasks.repository import TaskRow

MANIFEST_VERSION = 1


def build_manifest(
    *,
    request: DataExportRequested,
    task: TaskRow,
    items: list[ExportItem],
    results: list[ItemResult],
    exported_at: datetime,
    lineage: dict[str, Any] | None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "export_info": {
            "manifest_version": MANIFEST_VERSION,
            "job_id": task.id,
            "task_id": str(request.task_id),
            "name": request.name,
            "description": request.description,
            "export_format": request.export_format,
            "export_options": request.export_options,
            # The selection and filter applied to every file (null: all of it).
            "columns": request.export_options.get("columns"),
            "filter": request.export_options.get("filter"),
            "requested_by": request.owner_id,
            "created_at": task.created_at.isoformat() if task.created_at else None,
            "exported_at": exported_at.isoformat(),
            "total_files": len(items),
            "exported_files": sum(r.status == "completed" for r in results),
            "failed_files": sum(r.status == "failed" for r in results),
        },
        "files": [
            {
                "file_id": item.file_id,
                "dataset_id": item.dataset_id,
                "filename": item.filename,
                "source_format": item.format,
                "source_size": item.size,
                "source_sha256": item.sha256,
                "metadata": item.metadata,
                "status": result.status,
                "output_name": result.output_name,
                "output_size": result.size,
                "error": result.error,
                "warnings": result.warnings,
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
            }
            for item, result in zip(items, results, strict=True)
        ],
    }
    if request.include_lineage:
        manifest["lineage"] = lineage or {}
    return manifest
