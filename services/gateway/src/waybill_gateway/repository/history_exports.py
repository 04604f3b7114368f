"""History exports (their export associations) and tasks by uuid."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import ExportAssociation, History, Task
from waybill_shared.db.queries import fetch_page


async def latest_short_term_export(
    session: AsyncSession, history: History, digest: str
) -> ExportAssociation | None:
    """The newest short-term export of the history as it is now (its content version)
    with these parameters, not failed, cancelled or expired by its status."""
    rows = await session.execute(
        select(ExportAssociation)
        .where(
            ExportAssociation.object_type == "history",
            ExportAssociation.object_id == history.id,
            ExportAssociation.params_hash == digest,
            ExportAssociation.content_version == history.content_version,
            ExportAssociation.destination == "short_term",
            ExportAssociation.status.in_(("pending", "processing", "completed")),
        )
        .order_by(ExportAssociation.id.desc())
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def exports_page(
    session: AsyncSession, *, history_id: int, limit: int, offset: int
) -> tuple[list[Any], int]:
    """The history's exports with their tasks, newest first: rows of (association, task)."""
    stmt = (
        select(ExportAssociation, Task)
        .join(Task, Task.id == ExportAssociation.task_id)
        .where(
            ExportAssociation.object_type == "history",
            ExportAssociation.object_id == history_id,
        )
        .order_by(ExportAssociation.created_at.desc(), ExportAssociation.id.desc())
    )
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def task_by_uuid(
    session: AsyncSession, task_uuid: str, *, kind: str | None = None
) -> Task | None:
    stmt = select(Task).where(Task.uuid == task_uuid)
    if kind is not None:
        stmt = stmt.where(Task.kind == kind)
    return (await session.execute(stmt)).scalar_one_or_none()


async def completed_export(session: AsyncSession, ref: str) -> ExportAssociation | None:
    """The newest completed export named by `ref`: its id, its archive's uri, or its
    task's uuid."""
    stmt = select(ExportAssociation).where(ExportAssociation.status == "completed")
    if ref.isdigit():
        stmt = stmt.where(ExportAssociation.id == int(ref))
    elif ref.startswith("s3://"):
        stmt = stmt.where(ExportAssociation.result_data["uri"].astext == ref)
    else:
        stmt = stmt.join(Task, Task.id == ExportAssociation.task_id).where(Task.uuid == ref)
    return (
        await session.execute(stmt.order_by(ExportAssociation.id.desc()).limit(1))
    ).scalar_one_or_none()
