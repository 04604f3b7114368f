"""Maintenance decided by the clock: TTL expiry of artifacts, the storage reconcile
(what the database says is in S3 against what is there), and re-dispatch of tasks
whose worker stopped heartbeating. Run by the tracker on a schedule; TTL expiry also on
an admin's request through the gateway. Each function runs in the caller's
transaction and returns the outbox entries to publish once it commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

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


RECONCILE_BATCH = 1000
VANISHED_ARTIFACT = "the artifact is no longer in storage"


@dataclass(frozen=True)
class Reconciled:
    expired: int  # completed tasks whose artifact vanished: now expired
    missing: int  # files whose bytes vanished: now marked missing
    restored: int  # files marked missing whose bytes are back


async def reconcile_storage(
    conn: Connection, storage: Storage, *, batch: int = RECONCILE_BATCH
) -> Reconciled:
    """Make the database say no more than storage holds, so that no completed task
    offers a link that fails and no file offers bytes that are gone: expire completed
    tasks whose artifact vanished, mark files whose bytes vanished as missing (and
    unmark those whose bytes came back). Runs in the caller's transaction (its
    cursors need one).

    Each query runs before the listing it is compared with, so an object written after
    the listing began belongs to a row the query did not see: a row is only ever
    judged against a listing that started after its object was stored."""
    artifacts = conn.cursor(
        """SELECT id, artifact_key FROM tasks
           WHERE status = 'completed' AND artifact_key IS NOT NULL
           ORDER BY artifact_key COLLATE "C"
        """
    )
    vanished = await absent_ids(
        storage, ((r["id"], r["artifact_key"]) async for r in artifacts), batch=batch
    )
    expired = 0
    for task in await tasks.lock_completed(conn, sorted(vanished)):
        if await tasks.record_system_event(conn, task, "expired", error=VANISHED_ARTIFACT):
            await tasks.clear_artifact(conn, task.id)
            expired += 1

    flagged: set[int] = set()

    async def file_rows() -> AsyncIterator[tuple[int, str]]:
        async for r in conn.cursor(
            """SELECT id, storage_key, missing_at FROM files WHERE deleted_at IS NULL
               ORDER BY storage_key COLLATE "C"
            """
        ):
            if r["missing_at"] is not None:
                flagged.add(r["id"])
            yield r["id"], r["storage_key"]

    gone = await absent_ids(storage, file_rows(), batch=batch)
    missing, restored = gone - flagged, flagged - gone
    if missing:
        await conn.execute(
            "UPDATE files SET missing_at = now() WHERE id = ANY($1::int[]) AND missing_at IS NULL",
            sorted(missing),
        )
    if restored:
        await conn.execute(
            "UPDATE files SET missing_at = NULL WHERE id = ANY($1::int[])", sorted(restored)
        )
    return Reconciled(expired=expired, missing=len(missing), restored=len(restored))


async def absent_ids(
    storage: Storage, rows: AsyncIterator[tuple[int, str]], *, batch: int
) -> set[int]:
    """The ids whose key is not in storage. `rows` come sorted by key, bytewise (as
    S3 lists); keys sharing their first path segment are then contiguous, so each
    batch of one segment is checked against the next stretch of that prefix's listing
    (ListObjectsV2 from where the previous batch ended): one walk over each prefix."""
    absent: set[int] = set()
    pending: list[tuple[int, str]] = []
    after: str | None = None  # the last key checked, in the current prefix
    after_present = False

    async def check() -> None:
        nonlocal after, after_present
        prefix = _top_prefix(pending[0][1])
        fresh = [key for _, key in pending if key != after]  # a key repeated across batches
        present = await storage.present(fresh, prefix=prefix, start_after=after)
        if after is not None and after_present:
            present.add(after)
        absent.update(row_id for row_id, key in pending if key not in present)
        after, after_present = pending[-1][1], pending[-1][1] in present
        pending.clear()

    async for row_id, key in rows:
        if pending and _top_prefix(key) != _top_prefix(pending[0][1]):
            await check()
        if not pending and after is not None and _top_prefix(key) != _top_prefix(after):
            after, after_present = None, False
        pending.append((row_id, key))
        if len(pending) >= batch:
            await check()
    if pending:
        await check()
    return absent


def _top_prefix(key: str) -> str:
    head, slash, _ = key.partition("/")
    return head + slash


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
