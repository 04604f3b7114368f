"""The life of one task in a worker, the same for every kind: admit the command's
principal (may the AMQP user that published it act for the task's owner?), register
the task (a direct publisher's first sight of it), authorize, take the lease, ack, work
while the lease is kept, report the end. The kind-specific parts are `authorize`, whose
answer (what it loaded while checking) is handed to `work`, and `work` itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar
from uuid import UUID

import structlog

from waybill_shared.contracts.messages import TaskEvent, TaskKind
from waybill_shared.db.pg import Connection
from waybill_shared.errors import Invalid, NotFound
from waybill_shared.messaging.broker import RejectMessage
from waybill_shared.principals import PRINCIPAL_NAME
from waybill_shared.runtime import Runtime
from waybill_shared.tasks import repository as tasks
from waybill_shared.tasks.events import EventEmitter
from waybill_shared.tasks.lease import Lease
from waybill_shared.tasks.repository import LeaseKey, TaskRow

log = structlog.get_logger(__name__)

Checked = TypeVar("Checked")


# The status _claim gives a task that a direct publisher names but did not ask for.
FOREIGN = "another principal's or user's"


class Stopped(Exception):
    """The task was cancelled, or its lease lost, while working."""


class TaskFailed(Exception):
    """The task cannot succeed (bad input, not allowed...): fail it with this message."""


@dataclass
class LeasedTask:
    task: TaskRow
    emitter: EventEmitter
    lease: Lease

    @property
    def should_stop(self) -> bool:
        return self.lease.should_stop

    def check_stop(self) -> None:
        if self.lease.should_stop:
            raise Stopped


@dataclass(frozen=True)
class TaskSpec:
    """Who asks (the command's principal: Broker.principal_of), and how to register
    the task when this worker is the first to see it."""

    task_uuid: UUID
    kind: TaskKind
    owner_id: int
    principal: str | None
    request: dict[str, Any]
    job_key: str | None = None
    total_items: int = 0
    ttl_hours: int = 48


@dataclass(frozen=True)
class TaskHandlers(Generic[Checked]):
    """What a kind of task does: check the request for its owner (raise NotFound,
    Invalid or TaskFailed to refuse it) and return what the check loaded; then work."""

    authorize: Callable[[TaskRow], Awaitable[Checked]]
    work: Callable[[LeasedTask, Checked], Awaitable[None]]
    on_stopped: Callable[[], Awaitable[None]] | None = None


def limited(
    slots: asyncio.Semaphore, work: Callable[[LeasedTask, Checked], Awaitable[None]]
) -> Callable[[LeasedTask, Checked], Awaitable[None]]:
    """`work` run only while holding one of `slots` (heavy work: at most so many at once;
    the lease is kept while the task waits its turn)."""

    async def run(leased: LeasedTask, checked: Checked) -> None:
        async with slots:
            leased.check_stop()
            await work(leased, checked)

    return run


async def run_leased_task(
    *,
    runtime: Runtime,
    spec: TaskSpec,
    ack: Callable[[], Awaitable[None]],
    handlers: TaskHandlers[Checked],
) -> None:
    await _admit(runtime, spec)
    claimed, skipped = await _claim(runtime, spec)
    if skipped is FOREIGN:
        await _refuse(
            runtime,
            spec,
            f"task {spec.task_uuid} was not asked for by {spec.principal!r} "
            f"for user {spec.owner_id}",
        )
    if claimed is None:
        # Finished, cancelled, or held by another worker (a redelivery): nothing to do.
        await ack()
        log.info("task skipped", task=str(spec.task_uuid), status=skipped)
        return
    try:
        checked = await handlers.authorize(claimed)
    except (NotFound, Invalid, TaskFailed) as exc:
        await _refuse_request(runtime, claimed, str(exc))
        await ack()
        return
    except Exception:
        # Not an answer about the request (the database away?): give the lease back
        # now, so the redelivery of this message finds the task free.
        await _hand_back(runtime, Lease(LeaseKey(claimed.id, claimed.attempt)), "could not check")
        raise
    # Ack once the lease is held and the request allowed: from here the lease, not
    # the delivery, proves life.
    await ack()
    keeper = runtime.leases
    lease = keeper.hold(LeaseKey(claimed.id, claimed.attempt))
    emitter = EventEmitter(
        runtime.broker,
        task_id=spec.task_uuid,
        kind=spec.kind,
        attempt=claimed.attempt,
        principal=claimed.principal or runtime.settings.amqp_gateway_user,
    )
    structlog.contextvars.bind_contextvars(task=str(spec.task_uuid), attempt=claimed.attempt)
    finished = False
    try:
        await emitter.emit("processing")
        try:
            await handlers.work(LeasedTask(claimed, emitter, lease), checked)
            finished = True
        except Stopped:
            if handlers.on_stopped is not None:
                await handlers.on_stopped()
            if lease.cancelled:
                await emitter.emit("cancelled", error="cancelled by the user")
                finished = True
                log.info("task cancelled; partial artifacts removed")
        except TaskFailed as exc:
            if handlers.on_stopped is not None:
                await handlers.on_stopped()
            await emitter.emit("failed", error=str(exc)[:4000])
            finished = True
        except asyncio.CancelledError:
            # Shutting down past the grace period: stop the work (a thread still busy
            # with it sees the lease as lost) and hand the task back at once, so another
            # worker takes it now, not when the lease runs out.
            lease.lost = True
            await asyncio.shield(_hand_back(runtime, lease, "worker stopped"))
            raise
        except Exception as exc:
            # Possibly transient (storage or database away): let the lease run out
            # now so the tracker re-dispatches, up to the attempt limit.
            log.exception("task attempt failed; handing it back")
            await _hand_back(runtime, lease, repr(exc))
            return
        log.debug("task attempt finished", kind=spec.kind)
    finally:
        structlog.contextvars.unbind_contextvars("task", "attempt")
        await emitter.settle()
        if finished:
            keeper.finish(lease)
        else:
            keeper.drop(lease)


async def _admit(runtime: Runtime, spec: TaskSpec) -> None:
    """Refuse the command unless its principal may act for the owner it names."""
    refused = await runtime.principals.refusal(spec.principal, spec.owner_id)
    if refused is not None:
        await _refuse(runtime, spec, refused)


async def _claim(runtime: Runtime, spec: TaskSpec) -> tuple[TaskRow | None, str | None]:
    """Take the task's lease: one statement when the task is known (the usual case);
    a direct publisher's task is registered on first sight. A direct publisher takes
    only a task it asked for, for the same owner (in the same statement). Returns (the
    claimed task, or None and the status of the task that could not be claimed, or
    FOREIGN when it is not the direct publisher's)."""
    asked_by = (
        None
        if spec.principal is None or runtime.principals.is_service(spec.principal)
        else (spec.principal, spec.owner_id)
    )

    async def claim(conn: Connection) -> TaskRow | None:
        return await tasks.claim_lease(
            conn,
            task_uuid=spec.task_uuid,
            worker_id=runtime.worker_id,
            lease_seconds=runtime.settings.lease_seconds,
            asked_by=asked_by,
        )

    async with runtime.db.acquire() as conn:
        claimed = await claim(conn)
        if claimed is not None:
            return claimed, None
        task = await tasks.get_task_by_uuid(conn, spec.task_uuid)
        if task is None:
            await tasks.register_task(
                conn,
                task_uuid=spec.task_uuid,
                kind=spec.kind,
                owner_id=spec.owner_id,
                request=spec.request,
                job_key=spec.job_key,
                total_items=spec.total_items,
                ttl_hours=spec.ttl_hours,
                principal=spec.principal,
            )
            claimed = await claim(conn)
            if claimed is not None:
                return claimed, None
            task = await tasks.get_task_by_uuid(conn, spec.task_uuid)
        if (
            task is not None
            and asked_by is not None
            and asked_by != (task.principal, task.owner_id)
        ):
            return None, FOREIGN
        return None, task.status if task is not None else None


async def _refuse(runtime: Runtime, spec: TaskSpec, reason: str) -> NoReturn:
    """The command's publisher may not run this task: nothing is read or written for
    it, and its message is dead-lettered with the reason. If the task exists and is this
    principal's own, it fails with the reason; a task of anyone else is left alone
    (naming it must not fail it). The principal hears of the refusal on its own events,
    as of any failure."""
    principal = spec.principal
    if principal is not None:
        await _refuse_principal(runtime, spec, principal, reason)
    log.warning("command refused", task=str(spec.task_uuid), principal=principal, reason=reason)
    raise RejectMessage(f"refused: {reason}")


async def _refuse_principal(runtime: Runtime, spec: TaskSpec, principal: str, reason: str) -> None:
    """Fail the principal's own task, if it exists; else tell the principal by an event."""
    async with runtime.db.acquire() as conn, conn.transaction():
        task = await tasks.get_task_by_uuid(conn, spec.task_uuid, lock=True)
        if task is not None and task.principal == principal:
            await tasks.record_system_event(conn, task, "failed", error=f"refused: {reason}")
    if task is not None or not PRINCIPAL_NAME.match(principal):
        return  # recorded with the task (the tracker has nothing to add), or unroutable
    event = TaskEvent(
        task_id=spec.task_uuid,
        kind=spec.kind,
        attempt=1,
        seq=1,
        event="failed",
        error=f"refused: {reason}",
    )
    await runtime.broker.publish(
        event,
        message_id=f"{spec.task_uuid}:refused",
        routing_key=runtime.topology.event_key(principal, spec.kind, "failed"),
    )


async def _refuse_request(runtime: Runtime, task: TaskRow, reason: str) -> None:
    """The request may not run (its owner may not read an input, say): the task fails
    with the reason, and nothing is read or written."""
    async with runtime.db.acquire() as conn, conn.transaction():
        locked = await tasks.get_task(conn, task.id, lock=True)
        if locked is not None:
            await tasks.record_system_event(conn, locked, "failed", error=f"refused: {reason}")
    log.warning("task refused", task=task.uuid, reason=reason)


async def _hand_back(runtime: Runtime, lease: Lease, error: str) -> None:
    runtime.leases.drop(lease)
    async with runtime.db.acquire() as conn:
        await tasks.hand_back(conn, lease.key, worker_id=runtime.worker_id, error=error)
