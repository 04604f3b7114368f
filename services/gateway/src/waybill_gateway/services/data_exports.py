"""The batch export lifecycle: create (durably, via the outbox), read, list, cancel,
delete, statistics, cleanup."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import BigInteger, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.schemas import (
    DataExportCreate,
    DataExportJob,
    ExportFileOut,
    ExportStatistics,
    TaskEventOut,
)
from waybill_gateway.services.catalog import readable_file_ids, visible_to
from waybill_gateway.services.errors import Conflict, Invalid, NotFound
from waybill_shared import outbox
from waybill_shared.contracts.messages import DataExportRequested
from waybill_shared.db.models import Dataset, History, Task, TaskEvent, User
from waybill_shared.db.queries import among, fetch_page
from waybill_shared.export_options import parse_export_options
from waybill_shared.messaging.topology import Topology
from waybill_shared.retention import expire_artifacts
from waybill_shared.storage import Storage
from waybill_shared.task_state import TERMINAL
from waybill_shared.tasks import record_system_event, register_task, utcnow

KIND = "data_export"
DONE = ("completed", "expired")  # a job (or an event) for which the progress is 100


async def _check_datasets(session: AsyncSession, *, user: User, dataset_ids: list[int]) -> None:
    if not dataset_ids:
        return
    rows = (
        await session.execute(
            select(Dataset.id, History.owner_id)
            .join(History, History.id == Dataset.history_id)
            .where(among(Dataset.id, dataset_ids))
        )
    ).all()
    owners = {row.id: row.owner_id for row in rows}
    for dataset_id in dataset_ids:
        if dataset_id not in owners or not visible_to(user, owners[dataset_id]):
            raise NotFound(f"dataset {dataset_id} not found")


async def create_export(
    session: AsyncSession,
    *,
    owner: User,
    request: DataExportCreate,
    topology: Topology,
    max_files: int,
) -> tuple[Task, bool]:
    """Validate, authorize, and persist the task with its command in one transaction.
    Returns (task, created); an existing job_key answers the existing task."""
    total = len(request.file_ids) + len(request.dataset_ids)
    if total == 0:
        raise Invalid("file_ids and dataset_ids are both empty: name at least one file")
    if total > max_files:
        raise Invalid(f"{total} files requested; at most {max_files} per export")
    for name, ids in (("file_ids", request.file_ids), ("dataset_ids", request.dataset_ids)):
        if len(set(ids)) != len(ids):
            raise Invalid(f"{name} contains duplicates")
    try:
        options = parse_export_options(request.export_format, request.export_options)
    except ValueError as exc:
        raise Invalid(f"export_options: {exc}") from exc
    if request.job_key is not None:
        existing = (
            await session.execute(
                select(Task).where(
                    Task.owner_id == owner.id, Task.kind == KIND, Task.job_key == request.job_key
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            return existing, False
    filenames = await readable_file_ids(session, user=owner, file_ids=request.file_ids)
    await _check_datasets(session, user=owner, dataset_ids=request.dataset_ids)
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
    task, created = await register_task(
        session,
        task_uuid=command.task_id,
        kind=KIND,
        owner_id=owner.id,
        request=command.model_dump(mode="json"),
        job_key=request.job_key,
        total_items=total,
        items=items,
        ttl_hours=request.ttl_hours,
    )
    if created:
        outbox.enqueue(session, command, exchange=topology.commands_exchange)
    return task, created


async def get_export(session: AsyncSession, *, user: User, job_id: int, lock: bool = False) -> Task:
    stmt = select(Task).where(Task.id == job_id, Task.kind == KIND)
    if lock:
        stmt = stmt.with_for_update()
    task = (await session.execute(stmt)).scalar_one_or_none()
    if task is None or not visible_to(user, task.owner_id):
        raise NotFound(f"export job {job_id} not found")
    return task


async def list_exports(
    session: AsyncSession,
    *,
    user: User,
    status: str | None,
    export_format: str | None,
    job_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Task], int]:
    stmt = select(Task).where(Task.kind == KIND).order_by(Task.id.desc())
    if not user.is_admin:
        stmt = stmt.where(Task.owner_id == user.id)
    if status is not None:
        stmt = stmt.where(Task.status == status)
    if export_format is not None:
        stmt = stmt.where(Task.request["export_format"].astext == export_format)
    if job_key is not None:
        stmt = stmt.where(Task.job_key == job_key)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def cancel_export(session: AsyncSession, *, user: User, job_id: int) -> Task:
    task = await get_export(session, user=user, job_id=job_id, lock=True)
    if task.status in TERMINAL:
        raise Conflict(f"export job {job_id} is already {task.status}")
    await record_system_event(session, task, "cancelled", error="cancelled by the user")
    task.error_message = "cancelled by the user"
    return task


async def delete_export(
    session: AsyncSession, storage: Storage, *, user: User, job_id: int
) -> None:
    """Cancel if running, remove the artifact, forget the job. A worker still busy
    with it loses its lease and stops."""
    task = await get_export(session, user=user, job_id=job_id, lock=True)
    await storage.remove_prefix(f"exports/{task.uuid}/")
    await session.delete(task)


async def statistics(session: AsyncSession, *, user: User) -> ExportStatistics:
    where: list[Any] = [Task.kind == KIND]
    if not user.is_admin:
        where.append(Task.owner_id == user.id)
    fmt = Task.request["export_format"].astext
    # Several files with compress: false have no package; their sizes are in the result.
    output_size = Task.result["output_size"].astext.cast(BigInteger)
    status_rows = await session.execute(
        select(Task.status, func.count()).where(*where).group_by(Task.status)
    )
    by_status: dict[str, int] = {status: count for status, count in status_rows.all()}
    format_rows = await session.execute(select(fmt, func.count()).where(*where).group_by(fmt))
    by_format: dict[str, int] = {str(name): count for name, count in format_rows.all()}
    size, files = (
        await session.execute(
            select(
                func.coalesce(func.sum(func.coalesce(Task.artifact_size, output_size)), 0),
                func.coalesce(func.sum(Task.processed_items - Task.failed_items), 0),
            ).where(*where, Task.status.in_(("completed", "expired")))
        )
    ).one()
    return ExportStatistics(
        total_jobs=sum(by_status.values()),
        by_status=by_status,
        by_format=by_format,
        total_size_bytes=int(size),
        total_files_exported=int(files),
    )


async def list_events(
    session: AsyncSession, *, user: User, job_id: int, limit: int, offset: int
) -> tuple[list[TaskEvent], int]:
    task = await get_export(session, user=user, job_id=job_id)
    stmt = (
        select(TaskEvent)
        .where(TaskEvent.task_id == task.id)
        .order_by(TaskEvent.occurred_at, TaskEvent.attempt, TaskEvent.seq)
    )
    return await fetch_page(session, stmt, limit=limit, offset=offset)


def api_progress(progress: float, *, done: bool) -> int:
    """Whole percent, rounded down: 100 only once the export completed."""
    return 100 if done else min(int(progress), 99)


def event_out(event: TaskEvent) -> TaskEventOut:
    return TaskEventOut(
        attempt=event.attempt,
        seq=event.seq,
        event_type=event.event_type,
        status=event.status,
        progress=api_progress(event.progress, done=event.event_type in DONE),
        payload=event.payload,
        occurred_at=event.occurred_at,
    )


async def cleanup(session: AsyncSession, storage: Storage) -> int:
    return await expire_artifacts(session, storage)


async def to_job(task: Task, storage: Storage, *, url_seconds: int) -> DataExportJob:
    """The API view of a task, with download links signed now, never outliving the
    artifacts: the package's (or the one file's), or, for several files with
    `compress: false`, each file's own."""
    request: dict[str, Any] = task.request or {}
    result: dict[str, Any] = task.result or {}
    items = [item for item in (task.items or []) if item]
    files = [ExportFileOut.model_validate(item) for item in items]
    download_url = None
    lifetime = _link_lifetime(task, url_seconds)
    if lifetime is not None and task.artifact_key:
        filename = (result.get("artifact") or {}).get("filename")
        download_url = await storage.presigned_url(
            task.artifact_key, expires=lifetime, filename=filename
        )
    elif lifetime is not None and not request.get("compress", True) and len(items) > 1:
        for out, item in zip(files, items, strict=True):
            if artifact := item.get("artifact"):
                out.download_url = await storage.presigned_url(
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
        else result.get("output_size"),
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


def _link_lifetime(task: Task, url_seconds: int) -> timedelta | None:
    """How long a link signed now may live: while the completed artifact does, at
    most `url_seconds`; None when there is nothing to link to."""
    if task.status != "completed" or task.expires_at is None:
        return None
    lifetime = min(timedelta(seconds=url_seconds), task.expires_at - utcnow())
    return lifetime if lifetime.total_seconds() >= 1 else None
