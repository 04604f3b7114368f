from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from waybill_gateway.api.common import IdPath, PageDep, paginated
from waybill_gateway.deps import CurrentUser, SessionDep, SettingsDep, StorageDep
from waybill_gateway.quotas import Quotas
from waybill_gateway.schemas import FileOut, ProjectCreate, ProjectOut
from waybill_gateway.services import catalog
from waybill_shared.db.models import StoredFile

router = APIRouter(tags=["catalog"])


def file_out(record: StoredFile) -> FileOut:
    return FileOut(
        id=record.id,
        filename=record.filename,
        size=record.size,
        sha256=record.sha256,
        format=record.format,
        project_id=record.project_id,
        metadata=record.metadata_,
        uploaded_at=record.uploaded_at,
        status="missing" if record.missing_at is not None else "available",
    )


@router.post("/api/projects", status_code=201, response_model=ProjectOut)
async def create_project(body: ProjectCreate, session: SessionDep, user: CurrentUser) -> ProjectOut:
    project = await catalog.create_project(
        session, owner=user, name=body.name, description=body.description
    )
    await session.refresh(project)
    return ProjectOut.model_validate(project, from_attributes=True)


@router.get("/api/projects", **paginated(ProjectOut))
async def list_projects(session: SessionDep, user: CurrentUser, page: PageDep) -> list[ProjectOut]:
    projects, total = await catalog.list_projects(
        session, owner=user, limit=page.limit, offset=page.offset
    )
    return page.answer(
        [ProjectOut.model_validate(p, from_attributes=True) for p in projects], total
    )


@router.post("/api/files", status_code=201, response_model=FileOut)
async def upload_file(
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="the file; streamed to storage")],
    project_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    metadata: Annotated[str | None, Form(description="a JSON object")] = None,
) -> FileOut:
    record = await catalog.upload_file(
        session,
        storage,
        owner=user,
        filename=file.filename or "upload",
        stream=file.file,
        project_id=project_id,
        metadata=catalog.parse_metadata(metadata),
        max_bytes=settings.max_upload_bytes,
        quotas=Quotas.of(user, settings),
    )
    await session.refresh(record)
    return file_out(record)


@router.get("/api/files", **paginated(FileOut))
async def list_files(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    project_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> list[FileOut]:
    records, total = await catalog.list_files(
        session, user=user, project_id=project_id, limit=page.limit, offset=page.offset
    )
    return page.answer([file_out(r) for r in records], total)


@router.get("/api/files/{file_id}", response_model=FileOut)
async def get_file(file_id: IdPath, session: SessionDep, user: CurrentUser) -> FileOut:
    return file_out(await catalog.get_file(session, user=user, file_id=file_id))


@router.get("/api/files/{file_id}/content", response_class=StreamingResponse)
async def file_content(
    file_id: IdPath, session: SessionDep, storage: StorageDep, user: CurrentUser
) -> StreamingResponse:
    record = await catalog.get_file(session, user=user, file_id=file_id)
    content = await catalog.open_content(storage, record)
    return StreamingResponse(
        content.chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(record.size if content.size is None else content.size),
            "Content-Disposition": f'attachment; filename="{_header_safe(record.filename)}"',
        },
    )


@router.delete("/api/files/{file_id}", status_code=204, response_class=Response)
async def delete_file(
    file_id: IdPath, session: SessionDep, storage: StorageDep, user: CurrentUser
) -> Response:
    await catalog.delete_file(session, storage, user=user, file_id=file_id)
    return Response(status_code=204)


def _header_safe(name: str) -> str:
    return (
        "".join(c if c.isprintable() and c not in '"\\' else "_" for c in name)
        .encode("latin-1", "replace")
        .decode("latin-1")
    )
