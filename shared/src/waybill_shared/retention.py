"""Maintenance decided by the clock: TTL expiry of artifacts, and re-dispatch of
tasks whose worker stopped heartbeating. Run by the tracker on a schedule; TTL expiry
also on an admin's request through the gateway."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared import outbox
from waybill_shared.contracts.messages import COMMANDS, Message
from waybill_shared.db.models import Task
from waybill_shared.messaging.topology import Topology
from waybill_shared.storage import Storage
from waybill_shared.tasks import lock_expired_artifacts, lock_expired_leases, record_system_event

log = structlog.get_logger(__name__)


def command_model(kind: str) -> type[Message] | None:
    for model in COMMANDS:
        if getattr(model, "KIND", None) == kind:
            return model
    return None


async def expire_artifacts(session: AsyncSession, storage: Storage) -> int:
    """Completed tasks past their expiry: remove the artifacts, mark them expired."""
    count = 0
    for task in await lock_expired_artifacts(session):
        for prefix in sorted(artifact_prefixes(task)):
            await storage.remove_prefix(prefix)
        await record_system_event(session, task, "expired")
        task.artifact_key = None
        count += 1
    return count


def artifact_prefixes(task: Task) -> set[str]:
    """Where a task's artifacts are: its package's folder, and each file's (several
    files exported with compress: false are stored one by one)."""
    keys = [task.artifact_key] + [
        (item.get("artifact") or {}).get("key") for item in task.items or [] if item
    ]
    return {key.rsplit("/", 1)[0] + "/" for key in keys if key}


async def redispatch_lost_tasks(
    session: AsyncSession, topology: Topology, *, max_attempts: int
) -> tuple[int, int]:
    """Tasks whose lease ran out: publish their command again (through the outbox),
    or fail them with the reason once `max_attempts` were used. Returns
    (redispatched, failed)."""
    redispatched = failed = 0
    for task in await lock_expired_leases(session):
        model = command_model(task.kind)
        if task.attempt >= max_attempts or model is None:
            last = f"; last error: {task.error_message}" if task.error_message else ""
            await record_system_event(
                session,
                task,
                "failed",
                error=f"gave up after {task.attempt} of {max_attempts} attempts "
                f"(the worker stopped heartbeating or failed){last}",
            )
            failed += 1
            continue
        task.lease_owner = None
        task.lease_expires_at = None
        outbox.enqueue(
            session, model.model_validate(task.request), exchange=topology.commands_exchange
        )
        log.warning("re-dispatching task after a lost lease", task=task.uuid, attempt=task.attempt)
        redispatched += 1
    return redispatched, failed
