"""The life of one task in a worker, the same for every kind: register it (a direct
publisher's first sight of it), authorize, take the lease, ack, work while the lease
is kept, report the end. The kind-specific part is `work`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.contracts.messages import TaskKind
from waybill_shared.db.models import Task
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import Invalid, NotFound
from waybill_shared.events import EventEmitter
from waybill_shared.lease import LeaseKeeper
from waybill_shared.runtime import Runtime
from waybill_shared.tasks import (
    claim_lease,
    finish_lease,
    record_system_event,
    register_task,
    utcnow,
)

log = structlog.get_logger(__name__)


class Stopped(Exception):
    """The task was cancelled, or its lease lost, while working."""


class TaskFailed(Exception):
    """The task cannot succeed (bad input, not allowed...): fail it with this message."""


@dataclass
class LeasedTask:
    task: Task
    emitter: EventEmitter
    keeper: LeaseKeeper

    def check_stop(self) -> None:
        if self.keeper.should_stop:
            raise Stopped


@dataclass(frozen=True)
class TaskSpec:
    task_uuid: UUID
    kind: TaskKind
    owner_id: int
    request: dict[str, Any]
    job_key: str | None = None
    total_items: int = 0
    ttl_hours: int = 48


async def run_leased_task(
    *,
    runtime: Runtime,
    spec: TaskSpec,
    delivery: AbstractIncomingMessage,
    authorize: Callable[[AsyncSession, Task], Awaitable[None]],
    work: Callable[[LeasedTask], Awaitable[None]],
    on_stopped: Callable[[], Awaitable[None]] | None = None,
    poll_seconds: float = 0.5,
) -> None:
    settings = runtime.settings
    async with unit_of_work(runtime.sessions) as session:
        task, _ = await register_task(
            session,
            task_uuid=spec.task_uuid,
            kind=spec.kind,
            owner_id=spec.owner_id,
            request=spec.request,
            job_key=spec.job_key,
            total_items=spec.total_items,
            ttl_hours=spec.ttl_hours,
        )
        try:
            await authorize(session, task)
        except (NotFound, Invalid, TaskFailed) as exc:
            locked = await session.get(Task, task.id, with_for_update=True)
            assert locked is not None
            await record_system_event(session, locked, "failed", error=f"refused: {exc}")
            log.warning("task refused", task=str(spec.task_uuid), reason=str(exc))
            return
    async with unit_of_work(runtime.sessions) as session:
        claimed = await claim_lease(
            session,
            task_uuid=spec.task_uuid,
            worker_id=runtime.worker_id,
            lease_seconds=settings.lease_seconds,
        )
    # Ack once the lease is held: from here the lease, not the delivery, proves life.
    await delivery.ack()
    if claimed is None:
        log.info("task skipped: finished or held by another worker", task=str(spec.task_uuid))
        return
    emitter = EventEmitter(
        runtime.broker, task_id=spec.task_uuid, kind=spec.kind, attempt=claimed.attempt
    )
    keeper = LeaseKeeper(
        runtime.sessions,
        task_id=claimed.id,
        worker_id=runtime.worker_id,
        attempt=claimed.attempt,
        lease_seconds=settings.lease_seconds,
        poll_seconds=poll_seconds,
    )
    structlog.contextvars.bind_contextvars(task=str(spec.task_uuid), attempt=claimed.attempt)
    try:
        async with keeper:
            await emitter.emit("processing")
            try:
                await work(LeasedTask(claimed, emitter, keeper))
            except Stopped:
                if on_stopped is not None:
                    await on_stopped()
                if keeper.cancelled:
                    await emitter.emit("cancelled", error="cancelled by the user")
                    log.info("task cancelled; partial artifacts removed")
                return
            except TaskFailed as exc:
                if on_stopped is not None:
                    await on_stopped()
                await emitter.emit("failed", error=str(exc)[:4000])
            except asyncio.CancelledError:
                # Shutting down past the grace period: hand the task back at once so
                # another worker takes it now, not when the lease runs out.
                await asyncio.shield(
                    _hand_back(
                        runtime, claimed.id, runtime.worker_id, claimed.attempt, "worker stopped"
                    )
                )
                raise
            except Exception as exc:
                # Possibly transient (storage or database away): let the lease run out
                # now so the tracker re-dispatches, up to the attempt limit.
                log.exception("task attempt failed; handing it back")
                await _hand_back(runtime, claimed.id, runtime.worker_id, claimed.attempt, repr(exc))
                return
            async with unit_of_work(runtime.sessions) as session:
                await finish_lease(
                    session,
                    task_id=claimed.id,
                    worker_id=runtime.worker_id,
                    attempt=claimed.attempt,
                )
            log.info("task attempt finished", kind=spec.kind)
    finally:
        structlog.contextvars.unbind_contextvars("task", "attempt")


async def _hand_back(
    runtime: Runtime, task_id: int, worker_id: str, attempt: int, error: str
) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(
            update(Task)
            .where(Task.id == task_id, Task.lease_owner == worker_id, Task.attempt == attempt)
            .values(
                lease_expires_at=utcnow(), error_message=f"attempt {attempt} failed: {error}"[:4000]
            )
        )
