"""The extraction service's own statements: recording the extracted workflow. (Loading
the provenance graph is waybill_shared.extraction.repository, shared with the gateway.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import Workflow


async def record_workflow(
    session: AsyncSession,
    *,
    owner_id: int,
    task_id: int,
    name: str,
    storage_key: str,
    step_count: int,
) -> int:
    """The workflow row of a task, made once whatever the number of attempts; its id."""
    await session.execute(
        insert(Workflow)
        .values(
            owner_id=owner_id,
            task_id=task_id,
            name=name,
            storage_key=storage_key,
            step_count=step_count,
        )
        .on_conflict_do_nothing(index_elements=[Workflow.task_id])
    )
    workflow_id: int = (
        await session.execute(select(Workflow.id).where(Workflow.task_id == task_id))
    ).scalar_one()
    return workflow_id


async def workflow_storage_keys(session: AsyncSession) -> list[str]:
    """Every workflow's `.ga` key (all under workflows/)."""
    keys = await session.execute(
        select(Workflow.storage_key).where(Workflow.storage_key.startswith("workflows/"))
    )
    return list(keys.scalars())
