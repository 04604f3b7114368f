from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import RedirectResponse

from waybill_gateway.api.common import IdPath, PageDep, paginated
from waybill_gateway.deps import (
    CurrentUser,
    RelayDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from waybill_gateway.schemas import (
    ExportRecord,
    FromStoreRequest,
    HistoryExportOptions,
    StoreDownloadOut,
    TaskRef,
    WriteStoreRequest,
)
from waybill_gateway.services import history_exports
from waybill_gateway.services.errors import Conflict
from waybill_shared.clock import utcnow

router = APIRouter(tags=["history exports"])

TASK_EXPORT_TYPE = "application/vnd.galaxy.task.export+json"


@router.post(
    "/api/histories/{history_id}/prepare_store_download",
    status_code=202,
    response_model=StoreDownloadOut,
)
async def prepare_store_download(
    history_id: IdPath,
    body: HistoryExportOptions,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    settings: SettingsDep,
) -> StoreDownloadOut:
    _, task, command = await history_exports.request_export(
        session,
        user=user,
        history_id=history_id,
        options=body,
        destination="short_term",
        target_uri=None,
        settings=settings,
        topology=runtime.topology,
    )
    await session.commit()
    if command is not None:
        relay.publish_soon([command])
    return StoreDownloadOut(storage_request_id=task.uuid, task_id=task.uuid, reused=command is None)


@router.post("/api/histories/{history_id}/write_store", status_code=202, response_model=TaskRef)
async def write_store(
    history_id: IdPath,
    body: WriteStoreRequest,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    settings: SettingsDep,
) -> TaskRef:
    options = HistoryExportOptions.model_validate(body.model_dump(exclude={"target_uri"}))
    _, task, command = await history_exports.request_export(
        session,
        user=user,
        history_id=history_id,
        options=options,
        destination="remote",
        target_uri=body.target_uri,
        settings=settings,
        topology=runtime.topology,
    )
    await session.commit()
    if command is not None:
        relay.publish_soon([command])
    return TaskRef(task_id=task.uuid)


@router.get("/api/histories/{history_id}/exports", **paginated(ExportRecord))
async def list_exports(
    history_id: IdPath,
    session: SessionDep,
    user: CurrentUser,
    response: Response,
    page: PageDep,
    accept: Annotated[str | None, Header()] = None,
) -> list[ExportRecord]:
    """Export records, newest first. Answers the task export type
    (application/vnd.galaxy.task.export+json) and the default JSON alike."""
    records, total = await history_exports.list_exports(
        session, user=user, history_id=history_id, limit=page.limit, offset=page.offset
    )
    response.headers["Content-Type"] = (
        TASK_EXPORT_TYPE if accept and TASK_EXPORT_TYPE in accept else "application/json"
    )
    return page.answer(records, total)


@router.get("/api/short_term_storage/{storage_request_id}/ready", response_model=bool)
async def short_term_ready(storage_request_id: str, session: SessionDep, user: CurrentUser) -> bool:
    task = await history_exports.short_term_task(
        session, user=user, storage_request_id=storage_request_id
    )
    return task.status == "completed" and task.artifact_key is not None


@router.get(
    "/api/short_term_storage/{storage_request_id}",
    status_code=302,
    response_class=RedirectResponse,
    responses={409: {"description": "not ready yet"}},
)
async def short_term_download(
    storage_request_id: str,
    session: SessionDep,
    user: CurrentUser,
    storage: StorageDep,
    settings: SettingsDep,
) -> RedirectResponse:
    task = await history_exports.short_term_task(
        session, user=user, storage_request_id=storage_request_id
    )
    if task.status != "completed" or task.artifact_key is None or task.expires_at is None:
        raise Conflict(
            f"short-term storage request {storage_request_id} is {task.status}, not ready"
        )
    lifetime = min(timedelta(seconds=settings.download_url_seconds), task.expires_at - utcnow())
    if lifetime.total_seconds() < 1:
        raise Conflict(f"short-term storage request {storage_request_id} has expired")
    filename = ((task.result or {}).get("artifact") or {}).get("filename")
    url = storage.presigned_url(task.artifact_key, expires=lifetime, filename=filename)
    return RedirectResponse(url, status_code=302)


@router.post("/api/histories/from_store_async", status_code=202, response_model=TaskRef)
async def from_store_async(
    body: FromStoreRequest,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
) -> TaskRef:
    """Galaxy's CreateHistoryFromStore: re-import an export of this user's (any format
    but bco.json) into a new history. store_dict is not supported (422)."""
    task, command = await history_exports.request_import(
        session, user=user, body=body, topology=runtime.topology
    )
    await session.commit()
    if command is not None:
        relay.publish_soon([command])
    return TaskRef(task_id=task.uuid)
