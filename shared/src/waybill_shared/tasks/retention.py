"""Maintenance decided by the clock: TTL expiry of artifacts, and re-dispatch of tasks
whose worker stopped heartbeating. Run by the tracker on a schedule; TTL expiry also on
an admin's request through the gateway. Each function runs in the caller's
transaction and returns the outbox entries to publish once it commits."""

from __future__ import annotations

import structlog

from waybill_shared import outbox
from waybill_shared.contracts.messages import COMMANDS, Message
from waybill_shared.db.pg import Connection
from waybill_shared.messaging.topology import Topology
from waybill_shared.storage import Storage
from waybill_shared.tasks import repository as tasks

log = structlog.get_logger(__name__)


def command_model(kind: str) -> type[Message] | None:
    for model in COMMANDS:
        if getattr(model, "KIND", None) == kind:
            return model
    return None


async def expire_artifacts(conn: Connection, storage: Storage) -> int:
    """Completed tasks past their expiry: remove the artifacts, mark them expired."""
    count = 0
    for task in await tasks.lock_expired_artifacts(conn):
        for prefix in sorted(artifact_prefixes(task)):
            await storage.remove_prefix(prefix)
        await tasks.record_system_event(conn, task, "expired")
        await tasks.clear_artifact(conn, task.id)
        count += 1
    return count


def artifact_prefixes(task: tasks.TaskRow) -> set[str]:
    """Where a task's artifacts are: its package's folder, and each file's (several
    files exported with compress: false are stored one by one)."""
    keys = [task.artifact_key] + [
        (item.get("artifact") or {}).get("key") for item in task.items if item
    ]
    return {key.rsplit("/", 1)[0] + "/" for key in keys if key}


async def redispatch_lost_tasks(
    conn: Connection, topology: Topology, *, max_attempts: int
) -> tuple[list[outbox.OutboxEntry], int]:
    """Tasks whose lease ran out: publish their command again (through the outbox),
    or fail them with the reason once `max_attempts` were used. Returns (the commands
    to publish, how many failed)."""
    commands: list[outbox.OutboxEntry] = []
    failed = 0
    for task in await tasks.lock_expired_leases(conn):
        model = command_model(task.kind)
        if task.attempt >= max_attempts or model is None:
            last = f"; last error: {task.error_message}" if task.error_message else ""
            await tasks.record_system_event(
                conn,
                task,
                "failed",
                error=f"gave up after {task.attempt} of {max_attempts} attempts "
                f"(the worker stopped heartbeating or failed){last}",
            )
            failed += 1
            continue
        await tasks.release_for_redispatch(conn, task.id)
        commands.append(
            await outbox.enqueue(
                conn, model.model_validate(task.request), exchange=topology.commands_exchange
            )
        )
        log.warning("re-dispatching task after a lost lease", task=task.uuid, attempt=task.attempt)
    return commands, failed
