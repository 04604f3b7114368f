from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from waybill_gateway.api.common import IdPath
from waybill_gateway.deps import CurrentUser, RelayDep, RuntimeDep, SessionDep, StorageDep
from waybill_gateway.schemas import (
    ExtractionAccepted,
    ExtractionSummary,
    ExtractWorkflowRequest,
    LegacyExtractRequest,
    WorkflowOut,
)
from waybill_gateway.services import workflows
from waybill_gateway.services.extraction_summary import extraction_summary as summarize

router = APIRouter(tags=["workflows"])

MAX_WAIT_SECONDS = 60.0


def _wait_seconds(prefer: str | None) -> float:
    match = re.search(r"wait=(\d+(?:\.\d+)?)", prefer or "")
    return min(float(match.group(1)), MAX_WAIT_SECONDS) if match else 0.0


async def _extract(
    body: ExtractWorkflowRequest,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    prefer: str | None,
) -> ExtractionAccepted:
    task, command = await workflows.request_extraction(
        session, user=user, body=body, topology=runtime.topology
    )
    await session.commit()
    if command is not None:
        relay.publish_soon([command])
    wait = _wait_seconds(prefer)
    if wait > 0:
        task = await workflows.wait_for_task(runtime.sessions, task.id, wait) or task
        if task.status in ("completed", "failed", "cancelled"):
            response.status_code = 200
            response.headers["Preference-Applied"] = f"wait={wait:g}"
    return workflows.accepted(task)


@router.post(
    "/api/workflows/extract",
    status_code=202,
    response_model=ExtractionAccepted,
    responses={200: {"model": ExtractionAccepted, "description": "finished within Prefer: wait=N"}},
)
async def extract(
    body: ExtractWorkflowRequest,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    prefer: Annotated[str | None, Header()] = None,
) -> ExtractionAccepted:
    """Extract a workflow from datasets, collections, jobs and mapped runs (by id,
    from one history or several). `Prefer: wait=N` answers the finished result when it
    is done within N seconds."""
    return await _extract(body, response, session, user, runtime, relay, prefer)


@router.post(
    "/api/histories/{history_id}/extract_workflow",
    status_code=202,
    response_model=ExtractionAccepted,
    responses={200: {"model": ExtractionAccepted, "description": "finished within Prefer: wait=N"}},
)
async def extract_legacy(
    history_id: IdPath,
    body: LegacyExtractRequest,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
    relay: RelayDep,
    prefer: Annotated[str | None, Header()] = None,
) -> ExtractionAccepted:
    """The legacy HID-based form (Galaxy's extract_workflow)."""
    request = await workflows.legacy_request(session, user=user, history_id=history_id, body=body)
    return await _extract(request, response, session, user, runtime, relay, prefer)


@router.get("/api/histories/{history_id}/extraction_summary", response_model=ExtractionSummary)
async def extraction_summary(
    history_id: IdPath, session: SessionDep, user: CurrentUser
) -> ExtractionSummary:
    """Galaxy's WorkflowExtractionSummary: the history's jobs (a mapped run once, as its
    first job) and an entry per input (a dataset or collection no job made), in history
    order."""
    return await summarize(session, user=user, history_id=history_id)


@router.get("/api/workflows/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(
    workflow_id: IdPath, session: SessionDep, user: CurrentUser, storage: StorageDep
) -> WorkflowOut:
    workflow = await workflows.get_workflow(session, user=user, workflow_id=workflow_id)
    return await workflows.workflow_out(session, storage, workflow)


@router.get("/api/workflows/{workflow_id}/download", response_class=Response)
async def download_workflow(
    workflow_id: IdPath,
    session: SessionDep,
    user: CurrentUser,
    storage: StorageDep,
    format: Annotated[Literal["ga", "format2"], Query()] = "ga",
) -> Response:
    """The workflow document: Galaxy .ga JSON (format-version 0.1) or gxformat2 YAML."""
    workflow = await workflows.get_workflow(session, user=user, workflow_id=workflow_id)
    body, media_type, extension = await workflows.download(storage, workflow, format)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", workflow.name)[:100] or "workflow"
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'},
    )
