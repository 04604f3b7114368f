from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from waybill_gateway.deps import CurrentUser, SessionDep
from waybill_gateway.services import history_exports

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("/{task_id}/state", response_model=str)
async def task_state(task_id: str, session: SessionDep, user: CurrentUser) -> str:
    """PENDING, STARTED, SUCCESS or FAILURE (Galaxy's vocabulary)."""
    task = await history_exports.get_task(session, user=user, task_id=task_id)
    return history_exports.task_state(task)


@router.get("/{task_id}/result", response_model=dict[str, Any])
async def task_result(task_id: str, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """What the task made ({history_id}, {workflow_id}, {uri}, ...) or its error."""
    task = await history_exports.get_task(session, user=user, task_id=task_id)
    return history_exports.task_result(task)
