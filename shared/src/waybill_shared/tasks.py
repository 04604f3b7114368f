"""Task persistence shared by the services: registration, leases, and applying
status events. Functions take a session and never commit: the caller owns the unit
of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared import metrics
from waybill_shared.contracts.messages import TaskEvent
from waybill_shared.db.models import ExportAssociation, Task
from waybill_shared.db.models import TaskEvent as TaskEventRow
from waybill_shared.task_state import TERMINAL, next_status


def utcnow() -> datetime:
    return datetime.now(UTC)


async def get_task_by_uuid(
    session: AsyncSession, task_uuid: UUID | str, *, lock: bool = False
) -> Task | None:
    stmt = select(Task).where(Task.uuid == str(task_uuid))
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def register_task(
    session: AsyncSession,
    *,
    task_uuid: UUID | str,
    kind: str,
    owner_id: int,
    request: dict[str, Any],
    job_key: str | None = None,
    total_items: int = 0,
    items: list[Any] | None = None,
    ttl_hours: int = 48,
) -> tuple[Task, bool]:
    """Insert the task unless it exists (same uuid, or same owner+kind+job_key).
    Returns (task, created)."""
    values = {
        "uuid": str(task_uuid),
        "kind": kind,
        "owner_id": owner_id,
        "job_key": job_key,
        "request": request,
        "total_items": total_items,
        "items": items or [],
        "ttl_hours": ttl_hours,
    }
    stmt = insert(Task).values(**values).on_conflict_do_nothing().returning(Task.id)
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        task = await session.get(Task, new_id)
        assert task is not None
        return task, True
    existing = await get_task_by_uuid(session, task_uuid)
    if existing is None and job_key is not None:
        existing = (
            await session.execute(
                select(Task).where(
                    Task.owner_id == owner_id, Task.kind == kind, Task.job_key == job_key
                )
            )
        ).scalar_one()
    assert existing is not None
    return existing, False


async def claim_lease(
    session: AsyncSession, *, task_uuid: UUID | str, worker_id: str, lease_seconds: float
) -> Task | None:
    """Compare-and-set: take the task if it is active and nobody holds a live lease.
    Returns the task (its attempt incremented) or None."""
    now = utcnow()
    stmt = (
        update(Task)
        .where(
            Task.uuid == str(task_uuid),
            Task.status.in_(("pending", "processing")),
            (Task.lease_owner.is_(None)) | (Task.lease_expires_at < now),
        )
        .values(
            attempt=Task.attempt + 1,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            status="processing",
            started_at=func.coalesce(Task.started_at, now),
            updated_at=now,
        )
        .returning(Task)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def heartbeat(
    session: AsyncSession, *, task_id: int, worker_id: str, attempt: int, lease_seconds: float
) -> str | None:
    """Extend the lease. Returns the task's status, or None when the lease was lost
    (another attempt owns the task now): the caller must stop."""
    now = utcnow()
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == worker_id, Task.attempt == attempt)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Task.status)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def finish_lease(
    session: AsyncSession, *, task_id: int, worker_id: str, attempt: int
) -> None:
    """The work is done and its terminal event published: the lease no longer expires,
    so the sweeper will not re-dispatch while the tracker applies the event."""
    await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.lease_owner == worker_id, Task.attempt == attempt)
        .values(lease_expires_at=None)
    )


async def task_status(session: AsyncSession, task_id: int) -> str | None:
    return (
        await session.execute(select(Task.status).where(Task.id == task_id))
    ).scalar_one_or_none()


async def record_system_event(
    session: AsyncSession,
    task: Task,
    event: str,
    *,
    error: str | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """A transition decided outside a worker (cancel, expiry, lease loss), logged as an
    event of attempt 0. The task row must be locked by the caller."""
    new = next_status(task.status, event)
    if new == task.status:
        return False
    seq = (
        await session.execute(
            select(func.coalesce(func.max(TaskEventRow.seq), 0) + 1).where(
                TaskEventRow.task_id == task.id, TaskEventRow.attempt == 0
            )
        )
    ).scalar_one()
    now = utcnow()
    session.add(
        TaskEventRow(
            task_id=task.id,
            attempt=0,
            seq=seq,
            event_type=event,
            status=new,
            progress=task.progress,
            payload={"error": error, **(payload or {})},
            occurred_at=now,
        )
    )
    _set_status(task, new, now)
    if error:
        task.error_message = error
    await sync_export_association(session, task)
    return True


def _set_status(task: Task, new: str, at: datetime) -> None:
    if new == task.status:
        return
    task.status = new
    task.updated_at = at
    if new == "processing" and task.started_at is None:
        task.started_at = at
    if new in TERMINAL and new != "expired":
        task.completed_at = at
        task.lease_expires_at = None
        if new == "completed":
            task.progress = 100.0
            # ttl 0: the artifact is the caller's (a long-term export) and never expires.
            task.expires_at = at + timedelta(hours=task.ttl_hours) if task.ttl_hours else None
    metrics.TASKS.labels(kind=task.kind, status=new).inc()
    if new in TERMINAL and task.started_at is not None and new != "expired":
        metrics.TASK_DURATION.labels(kind=task.kind, status=new).observe(
            max((at - task.started_at).total_seconds(), 0.0)
        )


async def apply_event(session: AsyncSession, event: TaskEvent) -> bool:
    """Record one status event and fold it into the task's current state.

    Idempotent: the (task, attempt, seq) key makes a duplicate a no-op. Monotonic:
    status follows `next_status`, progress and counters only grow. Returns whether
    the event was new."""
    task = await get_task_by_uuid(session, event.task_id, lock=True)
    if task is None:
        return False
    new = next_status(task.status, event.event)
    inserted = (
        await session.execute(
            insert(TaskEventRow)
            .values(
                task_id=task.id,
                attempt=event.attempt,
                seq=event.seq,
                event_type=event.event,
                status=new,
                progress=event.progress,
                payload=event.model_dump(
                    mode="json", include={"item", "artifact", "result", "error", "item_index"}
                ),
                occurred_at=event.occurred_at,
            )
            .on_conflict_do_nothing()
            .returning(TaskEventRow.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        return False
    # Events of one task may be applied out of order (several consumers): per-item
    # results and counters are facts that only grow, so they apply whenever they come.
    task.processed_items = max(task.processed_items, event.processed_items)
    task.failed_items = max(task.failed_items, event.failed_items)
    if task.status not in TERMINAL:
        task.progress = max(task.progress, event.progress)
    if event.item is not None and event.item_index is not None:
        items = list(task.items or [])
        while len(items) <= event.item_index:
            items.append(None)
        items[event.item_index] = event.item.model_dump(mode="json")
        task.items = items
    if task.status in TERMINAL and new == task.status:
        return True  # a finished task's status and result stay as they ended
    if new == "completed":
        if event.artifact is not None:
            task.artifact_key = event.artifact.key
            task.artifact_size = event.artifact.size
            task.artifact_sha256 = event.artifact.sha256
        artifact = event.artifact.model_dump(mode="json") if event.artifact else {}
        task.result = {**(task.result or {}), **event.result, "artifact": artifact}
    if new == "failed":
        task.error_message = event.error or "failed"
        task.result = {**(task.result or {}), **event.result}
    _set_status(task, new, event.occurred_at)
    task.updated_at = utcnow()
    await sync_export_association(session, task)
    return True


async def sync_export_association(session: AsyncSession, task: Task) -> None:
    """Keep a history export's association (status, result, expiry) in step with its
    task, in the same transaction."""
    if task.kind != "history_export":
        return
    result = task.result or {}
    await session.execute(
        update(ExportAssociation)
        .where(ExportAssociation.task_id == task.id)
        .values(
            status=task.status,
            expires_at=task.expires_at,
            result_data={
                "success": task.status == "completed",
                "uri": result.get("uri"),
                "error": task.error_message if task.status in ("failed", "cancelled") else None,
            },
        )
    )


async def lock_expired_leases(session: AsyncSession, *, limit: int = 100) -> list[Task]:
    """Active tasks whose worker stopped heartbeating (locked for the caller)."""
    stmt = (
        select(Task)
        .where(Task.status.in_(("pending", "processing")), Task.lease_expires_at < utcnow())
        .order_by(Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def lock_expired_artifacts(session: AsyncSession, *, limit: int = 500) -> list[Task]:
    stmt = (
        select(Task)
        .where(Task.status == "completed", Task.expires_at < utcnow())
        .order_by(Task.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))


async def target_taken_by_another(session: AsyncSession, *, target_uri: str, owner_id: int) -> bool:
    """Whether a long-term export target already holds another owner's history export.
    A target belongs to the owner of the exports written there: writing someone else's
    history over it would replace their archive, and either export's record would then
    re-import the other's history. Checked by the gateway and again by the worker (for
    commands published straight to the broker). The advisory lock serialises claims
    on one target until the caller's transaction ends."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(target_uri))))
    found = (
        await session.execute(
            select(Task.id)
            .where(
                Task.kind == "history_export",
                Task.request["target_uri"].astext == target_uri,
                Task.owner_id != owner_id,
            )
            .limit(1)
        )
    ).first()
    return found is not None
