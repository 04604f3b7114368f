from __future__ import annotations

import functools
from typing import Annotated, get_args

from fastapi import APIRouter, Query, Response

from waybill_gateway.api.common import (
    IdPath,
    PageDep,
    WholePageDep,
    event_stream,
    model_response,
    paginated,
)
from waybill_gateway.deps import (
    AdminUser,
    CurrentUser,
    DbDep,
    LastEventId,
    ListenerDep,
    RelayDep,
    RuntimeDep,
    SettingsDep,
    StorageDep,
    TransactionDep,
)
from waybill_gateway.quotas import Quotas
from waybill_gateway.schemas import (
    CancelResult,
    CleanupResult,
    DataExportCreate,
    DataExportJob,
    ExportStatistics,
    TaskEventOut,
)
from waybill_gateway.services import data_exports, streams
from waybill_shared.contracts.messages import ExportFormat, TaskStatus
from waybill_shared.export_options import FormatDescription, describe_format

router = APIRouter(prefix="/api/data-export", tags=["data export"])

# Built once from the option models: what a create's `export_format` and
# `export_options` accept, for clients that build a form (the web UI).
FORMATS = [describe_format(name) for name in get_args(ExportFormat)]


@router.get("/formats", **paginated(FormatDescription))
async def list_formats(_: CurrentUser, page: WholePageDep) -> list[FormatDescription]:
    """Every export format with its options (kind, default, choices, bounds) and
    whether it takes `columns` and `filter`. A list like every other (whole by default)."""
    return page.answer(FORMATS[page.offset : page.offset + page.limit], len(FORMATS))


@router.post(
    "/jobs",
    status_code=202,
    response_model=DataExportJob,
    responses={200: {"model": DataExportJob, "description": "an existing job with this job_key"}},
)
async def create_job(
    body: DataExportCreate,
    db: DbDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    settings: SettingsDep,
) -> Response:
    # Durable before we answer: the task and its command are committed together.
    async with db.acquire() as conn:
        task, command = await data_exports.create_export(
            conn,
            owner=user,
            request=body,
            topology=runtime.topology,
            quotas=Quotas.of(user, settings),
        )
    if command is not None:
        relay.publish_soon([command])
    job = data_exports.to_job(task, runtime.storage, url_seconds=settings.download_url_seconds)
    return model_response(job, 202 if command is not None else 200)


@router.get("/jobs", **paginated(DataExportJob))
async def list_jobs(
    db: DbDep,
    user: CurrentUser,
    storage: StorageDep,
    settings: SettingsDep,
    page: PageDep,
    status: TaskStatus | None = None,
    export_format: ExportFormat | None = None,
    job_key: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="the job made with this job_key"),
    ] = None,
) -> list[DataExportJob]:
    """The caller's export jobs, newest first (an administrator's: everyone's)."""
    async with db.acquire() as conn:
        tasks, total = await data_exports.list_exports(
            conn,
            user=user,
            status=status,
            export_format=export_format,
            job_key=job_key,
            limit=page.limit,
            offset=page.offset,
        )
    jobs = [
        data_exports.to_job(t, storage, url_seconds=settings.download_url_seconds) for t in tasks
    ]
    return page.answer(jobs, total)


@router.get("/jobs/{job_id}", response_model=DataExportJob)
async def get_job(
    job_id: IdPath,
    db: DbDep,
    user: CurrentUser,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    async with db.acquire() as conn:
        task = await data_exports.get_export(conn, user=user, job_id=job_id)
    return model_response(
        data_exports.to_job(task, storage, url_seconds=settings.download_url_seconds)
    )


@router.get("/jobs/{job_id}/events", **paginated(TaskEventOut))
async def job_events(
    job_id: IdPath, db: DbDep, user: CurrentUser, page: WholePageDep
) -> list[TaskEventOut]:
    """Every status event of the job, in order (the tracker's log)."""
    async with db.acquire() as conn:
        events, total = await data_exports.list_events(
            conn, user=user, job_id=job_id, limit=page.limit, offset=page.offset
        )
    return page.answer([data_exports.event_out(e) for e in events], total)


JOB_STREAM_EXAMPLE = (
    'event: processing\nid: 41\ndata: {"id": 7, "status": "processing", "progress": 0, …}\n\n'
    'event: progress\nid: 43\ndata: {"id": 7, "status": "processing", "progress": 50, …}\n\n'
    'event: completed\nid: 46\ndata: {"id": 7, "status": "completed", "progress": 100, …}\n\n'
)


@router.get(
    "/jobs/{job_id}/stream",
    **event_stream(
        "the job, as GET /jobs/{id}",
        {"$ref": "#/components/schemas/DataExportJob"},
        JOB_STREAM_EXAMPLE,
    ),
)
async def stream_job(
    job_id: IdPath,
    db: DbDep,
    user: CurrentUser,
    storage: StorageDep,
    settings: SettingsDep,
    listener: ListenerDep,
    last_event_id: LastEventId = None,
) -> Response:
    """The job's live progress (Server-Sent Events): its state now, then at every change
    the tracker records, until it ends. Resumes after `Last-Event-ID`."""
    read = functools.partial(
        data_exports.job_snapshot,
        db,
        user=user,
        storage=storage,
        url_seconds=settings.download_url_seconds,
    )
    return await streams.open_stream(
        listener=listener,
        first=functools.partial(read, job_id),
        read=read,
        not_found=f"export job {job_id} not found",
        last_event_id=last_event_id,
        keepalive_seconds=settings.stream_keepalive_seconds,
    )


@router.post("/jobs/{job_id}/cancel", response_model=CancelResult)
async def cancel_job(job_id: IdPath, tx: TransactionDep, user: CurrentUser) -> CancelResult:
    await data_exports.cancel_export(tx, user=user, job_id=job_id)
    return CancelResult(message=f"export job {job_id} cancelled", job_id=job_id)


@router.delete("/jobs/{job_id}", status_code=204, response_class=Response)
async def delete_job(
    job_id: IdPath, tx: TransactionDep, user: CurrentUser, storage: StorageDep
) -> Response:
    await data_exports.delete_export(tx, storage, user=user, job_id=job_id)
    return Response(status_code=204)


@router.get("/statistics", response_model=ExportStatistics)
async def statistics(db: DbDep, user: CurrentUser) -> ExportStatistics:
    async with db.acquire() as conn:
        return await data_exports.statistics(conn, user=user)


@router.post("/cleanup", response_model=CleanupResult)
async def cleanup(tx: TransactionDep, storage: StorageDep, _: AdminUser) -> CleanupResult:
    count = await data_exports.cleanup(tx, storage)
    return CleanupResult(message=f"{count} expired exports cleaned up", count=count)
