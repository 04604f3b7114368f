from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Response

from waybill_gateway.api.common import event_stream
from waybill_gateway.deps import (
    CurrentUser,
    DbDep,
    LastEventId,
    ListenerDep,
    SessionDep,
    SettingsDep,
)
from waybill_gateway.services import history_exports, streams

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("/{task_id}/state", response_model=str)
async def task_state(task_id: str, session: SessionDep, user: CurrentUser) -> str:
    """PENDING, STARTED, SUCCESS or FAILURE (Galaxy's vocabulary)."""
    task = await history_exports.get_task(session, user=user, task_id=task_id)
    return history_exports.task_state(task)


@router.get("/{task_id}/result", response_model=dict[str, Any])
async def task_result(task_id: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Its state, status and progress, and what it made ({history_id}, {workflow_id},
    {uri}, ...) or its error."""
    task = await history_exports.get_task(session, user=user, task_id=task_id)
    return history_exports.task_result(task)


# What GET .../result always answers (with what the task made beside it).
TASK_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["state", "status", "progress", "error"],
    "properties": {
        "state": {"type": "string", "enum": ["PENDING", "STARTED", "SUCCESS", "FAILURE"]},
        "status": {"type": "string"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "error": {"type": ["string", "null"]},
    },
}

TASK_STREAM_EXAMPLE = (
    'event: processing\nid: 52\ndata: {"state": "STARTED", "status": "processing", '
    '"progress": 0, "error": null}\n\n'
    'event: completed\nid: 53\ndata: {"state": "SUCCESS", "status": "completed", '
    '"progress": 100, "error": null, "history_id": 12}\n\n'
)


@router.get(
    "/{task_id}/stream",
    **event_stream(
        "the task, as GET /api/tasks/{task_id}/result", TASK_RESULT, TASK_STREAM_EXAMPLE
    ),
)
async def stream_task(
    task_id: str,
    db: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
    listener: ListenerDep,
    last_event_id: LastEventId = None,
) -> Response:
    """The task's live progress (Server-Sent Events): its state now, then at every
    change the tracker records, until it ends. Resumes after `Last-Event-ID`."""
    read = functools.partial(history_exports.task_snapshot, db, user=user)
    return await streams.open_stream(
        listener=listener,
        first=functools.partial(read, task_uuid=task_id),
        read=read,
        not_found=f"task {task_id} not found",
        last_event_id=last_event_id,
        keepalive_seconds=settings.stream_keepalive_seconds,
    )
