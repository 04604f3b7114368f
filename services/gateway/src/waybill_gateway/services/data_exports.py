"""The batch export lifecycle: create (durably, via the outbox), read, list, cancel,
delete, statistics, cleanup. These run on every job's path, so they speak SQL on
asyncpg through the task repository (see waybill_shared/db/pg.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from waybill_gateway.quotas import Quotas
from waybill_gateway.repository import data_exports as repository
from waybill_gateway.schemas import (
    DataExportCreate,
    DataExportJob,
    ExportFileOut,
    ExportStatistics,
    TaskEventOut,
)
from waybill_gateway.services.catalog import visible_to
from waybill_gateway.services.errors import Conflict, Invalid, NotFound
from waybill_gateway.services.streams import Snapshot
from waybill_shared import outbox
from waybill_shared.clock import utcnow
from waybill_shared.contracts.messages import DataExportRequested
from waybill_shared.db.models import User
from waybill_shared.db.pg import Connection, Pool, Record, from_json
from waybill_shared.export_options import parse_export_options
from waybill_shared.messaging.topology import Topology
from waybill_shared.storage import Storage
from waybill_shared.tasks import notify
from waybill_shared.tasks import repository as tasks
from waybill_shared.tasks.repository import TaskRow
from waybill_shared.tasks.retention import expire_artifacts
from waybill_shared.tasks.state import TERMINAL

KIND = "data_export"
DONE = ("completed", "expired")  # a job (or an event) for which the progress is 100


async def _readable_files_and_usage(
    conn: Connection, *, user: User, file_ids: list[int], quotas: Quotas
) -> dict[int, str]:
    """The files' names by id (NotFound names the first file the user may not read),
    then the quotas checked, with the user's stored bytes and unfinished exports read
    in the same statement: the running count stops at the quota, so it costs at most
    that many index entries (ix_tasks_owner_unfinished)."""
    if not file_ids and not quotas.stored_bytes and not quotas.running_exports:
        return {}
    rows = await repository.files_and_usage(
        conn, user_id=user.id, file_ids=file_ids, running_limit=quotas.running_exports
    )
    owners = {row["id"]: row["owner_id"] for row in rows if row["id"] is not None}
    for file_id in file_ids:
        if file_id not in owners or not visible_to(user, owners[file_id]):
            raise NotFound(f"file {file_id} not found")
    if rows:
        quotas.check_stored(int(rows[0]["stored_bytes"]))
        quotas.check_running(int(rows[0]["running"]))
    return {row["id"]: row["filename"] for row in rows if row["id"] is not None}


async def _check_datasets(conn: Connection, *, user: User, dataset_ids: list[int]) -> None:
    if not dataset_ids:
        return
    owners = await repository.dataset_owners(conn, dataset_ids)
    for dataset_id in dataset_ids:
        if dataset_id not in owners or not visible_to(user, owners[dataset_id]):
            raise NotFound(f"dataset {dataset_id} not found")


async def create_export(
    conn: Connection,
    *,
    owner: User,
    request: DataExportCreate,
    topology: Topology,
    quotas: Quotas,
) -> tuple[TaskRow, outbox.OutboxEntry | None]:
    """Validate, authorize, and persist the task with its command (one statement, so
    both or neither). Returns (task, the command to hand to the relay); an existing
    job_key answers the existing task and no command."""
    total = len(request.file_ids) + len(request.dataset_ids)
    if total == 0:
        raise Invalid("file_ids and dataset_ids are both empty: name at least one file")
    quotas.check_files(total)
    for name, ids in (("file_ids", request.file_ids), ("dataset_ids", request.dataset_ids)):
        if len(set(ids)) != len(ids):
            raise Invalid(f"{name} contains duplicates")
    try:
        options = parse_export_options(request.export_format, request.export_options)
    except ValueError as exc:
        raise Invalid(f"export_options: {exc}") from exc
    if request.job_key is not None:
        existing = await tasks.find_by_job_key(
            conn, owner_id=owner.id, kind=KIND, job_key=request.job_key
        )
        if existing is not None:
            return existing, None
    filenames = await _readable_files_and_usage(
        conn, user=owner, file_ids=request.file_ids, quotas=quotas
    )
    await _check_datasets(conn, user=owner, dataset_ids=request.dataset_ids)
    command = DataExportRequested(
        task_id=uuid.uuid4(),
        owner_id=owner.id,
        name=request.name,
        description=request.description,
        file_ids=request.file_ids,
        dataset_ids=request.dataset_ids,
        export_format=request.export_format,
        export_options=options.model_dump(mode="json"),
        include_metadata=request.include_metadata,
        include_lineage=request.include_lineage,
        compress=request.compress,
        ttl_hours=request.ttl_hours,
        job_key=request.job_key,
    )
    items = [
        {
            "file_id": file_id,
            "dataset_id": None,
            "filename": filenames[file_id],
            "status": "pending",
        }
        for file_id in request.file_ids
    ] + [
        {"file_id": None, "dataset_id": dataset_id, "filename": "", "status": "pending"}
        for dataset_id in request.dataset_ids
    ]
    registered = await tasks.register_task(
        conn,
        task_uuid=command.task_id,
        kind=KIND,
        owner_id=owner.id,
        request=command.model_dump_json(),
        job_key=request.job_key,
        total_items=total,
        items=items,
        ttl_hours=request.ttl_hours,
        command=outbox.prepare(command, exchange=topology.commands_exchange),
    )
    # Not created: the same job_key, committed meanwhile by a concurrent request.
    return registered.task, registered.command


async def get_export(conn: Connection, *, user: User, job_id: int, lock: bool = False) -> TaskRow:
    task = await tasks.get_task(conn, job_id, lock=lock)
    if task is None or task.kind != KIND or not visible_to(user, task.owner_id):
        raise NotFound(f"export job {job_id} not found")
    return task


async def list_exports(
    conn: Connection,
    *,
    user: User,
    status: str | None,
    export_format: str | None,
    job_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TaskRow], int]:
    return await repository.exports_page(
        conn,
        owner_id=None if user.is_admin else user.id,
        status=status,
        export_format=export_format,
        job_key=job_key,
        limit=limit,
        offset=offset,
    )


async def cancel_export(conn: Connection, *, user: User, job_id: int) -> TaskRow:
    task = await get_export(conn, user=user, job_id=job_id, lock=True)
    if task.status in TERMINAL:
        raise Conflict(f"export job {job_id} is already {task.status}")
    cancelled = await tasks.record_system_event(
        conn, task, "cancelled", error="cancelled by the user"
    )
    return cancelled or task


async def delete_export(conn: Connection, storage: Storage, *, user: User, job_id: int) -> None:
    """Cancel if running, remove the artifact, forget the job. A worker still busy
    with it loses its lease and stops."""
    task = await get_export(conn, user=user, job_id=job_id, lock=True)
    await storage.remove_prefix(f"exports/{task.uuid}/")
    await repository.delete_task(conn, task.id)
    await notify.notify(conn, [task.id])  # its streams end


async def statistics(conn: Connection, *, user: User) -> ExportStatistics:
    by_status, by_format, totals = await repository.statistics(
        conn, owner_id=None if user.is_admin else user.id
    )
    return ExportStatistics(
        total_jobs=sum(by_status.values()),
        by_status=by_status,
        by_format=by_format,
        total_size_bytes=int(totals["size"]),
        total_files_exported=int(totals["files"]),
    )


async def job_snapshot(
    db: Pool, job_id: int, *, user: User, storage: Storage, url_seconds: int
) -> Snapshot | None:
    """The job as its GET answers it, for its event stream; None when it is not there
    for this user."""
    async with db.acquire() as conn:
        found = await tasks.get_task_and_last_event(conn, task_id=job_id)
    if found is None or found[0].kind != KIND or not visible_to(user, found[0].owner_id):
        return None
    task, last_event_id = found
    body = to_job(task, storage, url_seconds=url_seconds).model_dump_json()
    return Snapshot(task.id, last_event_id, task.status, body)


async def list_events(
    conn: Connection, *, user: User, job_id: int, limit: int, offset: int
) -> tuple[list[Record], int]:
    task = await get_export(conn, user=user, job_id=job_id)
    return await repository.events_page(conn, task.id, limit=limit, offset=offset)


def api_progress(progress: float, *, done: bool) -> int:
    """Whole percent, rounded down: 100 only once the export completed."""
    return 100 if done else min(int(progress), 99)


def event_out(event: Record) -> TaskEventOut:
    return TaskEventOut(
        attempt=event["attempt"],
        seq=event["seq"],
        event_type=event["event_type"],
        status=event["status"],
        progress=api_progress(event["progress"], done=event["event_type"] in DONE),
        payload=from_json(event["payload"]) or {},
        occurred_at=event["occurred_at"],
    )


async def cleanup(conn: Connection, storage: Storage) -> int:
    return await expire_artifacts(conn, storage)


def to_job(task: TaskRow, storage: Storage, *, url_seconds: int) -> DataExportJob:
    """The API view of a task, with download links signed now, never outliving the
    artifacts: the package's (or the one file's), or, for several files with
    `compress: false`, each file's own."""
    request: dict[str, Any] = task.request
    items = [item for item in task.items if item]
    files = [ExportFileOut.model_validate(item) for item in items]
    download_url = None
    lifetime = _link_lifetime(task, url_seconds)
    if lifetime is not None and task.artifact_key:
        filename = (task.result.get("artifact") or {}).get("filename")
        download_url = storage.presigned_url(task.artifact_key, expires=lifetime, filename=filename)
    elif lifetime is not None and not request.get("compress", True) and len(items) > 1:
        for out, item in zip(files, items, strict=True):
            if artifact := item.get("artifact"):
                out.download_url = storage.presigned_url(
                    artifact["key"], expires=lifetime, filename=artifact["filename"]
                )
    return DataExportJob(
        id=task.id,
        task_id=task.uuid,
        job_key=task.job_key,
        name=request.get("name", ""),
        description=request.get("description"),
        status=task.status,
        progress=api_progress(task.progress, done=task.status in DONE),
        total_files=task.total_items,
        processed_files=task.processed_items,
        failed_files=task.failed_items,
        files=files,
        output_size=task.artifact_size
        if task.artifact_size is not None
        else task.result.get("output_size"),
        download_url=download_url,
        expires_at=task.expires_at,
        error_message=task.error_message,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        export_format=request.get("export_format", ""),
        export_options=request.get("export_options") or {},
        include_metadata=request.get("include_metadata", True),
        include_lineage=request.get("include_lineage", False),
        compress=request.get("compress", True),
        ttl_hours=task.ttl_hours,
    )


def _link_lifetime(task: TaskRow, url_seconds: int) -> timedelta | None:
    """How long a link signed now may live: while the completed artifact does, at
    most `url_seconds`; None when there is nothing to link to."""
    if task.status != "completed" or task.expires_at is None:
        return None
    lifetime = min(timedelta(seconds=url_seconds), task.expires_at - utcnow())
    return lifetime if lifetime.total_seconds() >= 1 else None
