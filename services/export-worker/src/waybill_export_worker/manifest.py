"""export_metadata.json: what was exported, from where, and (optionally) how each
dataset was made. Pure: built from the request, the items and their results.

The seed's documented fields come first in each part (`export_info` {job_key, name,
created_at, format}; `files[]` {id, filename, size, uploaded_at, metadata}; `lineage`
{source_datasets, pipeline_runs, processing_steps}); our richer fields sit beside
them. `manifest_version` changes when a field changes meaning or goes away."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from waybill_export_worker.repository import ExportItem
from waybill_shared.contracts.messages import DataExportRequested, ItemResult
from waybill_shared.tasks.repository import TaskRow

# 2: the seed's field names (format, files[].id/size/uploaded_at, lineage's three lists).
MANIFEST_VERSION = 2


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
        "manifest_version": MANIFEST_VERSION,
        "export_info": {
            "job_key": request.job_key,
            "name": request.name,
            "created_at": task.created_at.isoformat() if task.created_at else None,
            "format": request.export_format,
            "job_id": task.id,
            "task_id": str(request.task_id),
            "description": request.description,
            "export_options": request.export_options,
            # The selection and filter applied to every file (null: all of it).
            "columns": request.export_options.get("columns"),
            "filter": request.export_options.get("filter"),
            "requested_by": request.owner_id,
            "exported_at": exported_at.isoformat(),
            "total_files": len(items),
            "exported_files": sum(r.status == "completed" for r in results),
            "failed_files": sum(r.status == "failed" for r in results),
        },
        "files": [
            {
                "id": item.file_id,
                "filename": item.filename,
                "size": item.size,
                "uploaded_at": item.uploaded_at.isoformat() if item.uploaded_at else None,
                "metadata": item.metadata,
                "dataset_id": item.dataset_id,
                "format": item.format,
                "sha256": item.sha256,
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
    if lineage is not None:  # asked for with include_lineage
        manifest["lineage"] = lineage
    return manifest
