"""Maintenance decided by the clock: TTL expiry of artifacts, the storage reconcile
(what the database says is in S3 against what is there), and re-dispatch of tasks
whose worker stopped heartbeating. Run by the tracker on a schedule; TTL expiry also
on an admin's request through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared import outbox
from waybill_shared.contracts.messages import COMMANDS, Message
from waybill_shared.db.models import StoredFile, Task
from waybill_shared.db.queries import among
from waybill_shared.messaging.topology import Topology
from waybill_shared.storage import Storage
from waybill_shared.tasks import (
    lock_expired_artifacts,
    lock_expired_leases,
    record_system_event,
    utcnow,
)

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
        if task.artifact_key:
            prefix = task.artifact_key.rsplit("/", 1)[0] + "/"
            await storage.remove_prefix(prefix)
        await record_system_event(session, task, "expired")
        task.artifact_key = None
        count += 1
    return count


RECONCILE_BATCH = 1000
VANISHED_ARTIFACT = "the artifact is no longer in storage"


@dataclass(frozen=True)
class Reconciled:
    expired: int  # completed tasks whose artifact vanished: now expired
    missing: int  # files whose bytes vanished: now marked missing
    restored: int  # files marked missing whose bytes are back


async def reconcile_storage(
    session: AsyncSession, storage: Storage, *, batch: int = RECONCILE_BATCH
) -> Reconciled:
    """Make the database say no more than storage holds, so that no completed task
    offers a link that fails and no file offers bytes that are gone: expire completed
    tasks whose artifact vanished, mark files whose bytes vanished as missing (and
    unmark those whose bytes came back).

    Each query runs before the listing it is compared with, so an object written after
    the listing began belongs to a row the query did not see: a row is only ever
    judged against a listing that started after its object was stored."""
    artifacts = (
        select(Task.id, Task.artifact_key)
        .where(Task.status == "completed", Task.artifact_key.is_not(None))
        .order_by(Task.artifact_key.collate("C"))
    )
    vanished_tasks = await absent_ids(storage, _rows(session, artifacts), batch=batch)
    expired = 0
    if vanished_tasks:
        locked = await session.execute(
            select(Task)
            .where(among(Task.id, vanished_tasks), Task.status == "completed")
            .with_for_update(skip_locked=True)
        )
        for task in locked.scalars():
            if await record_system_event(session, task, "expired", error=VANISHED_ARTIFACT):
                task.artifact_key = None
                expired += 1

    flagged: set[int] = set()
    files = (
        select(StoredFile.id, StoredFile.storage_key, StoredFile.missing_at)
        .where(StoredFile.deleted_at.is_(None))
        .order_by(StoredFile.storage_key.collate("C"))
    )

    async def file_rows() -> AsyncIterator[tuple[int, str]]:
        async for file_id, key, missing_at in await session.stream(files):
            if missing_at is not None:
                flagged.add(file_id)
            yield file_id, key

    vanished_files = await absent_ids(storage, file_rows(), batch=batch)
    missing, restored = vanished_files - flagged, flagged - vanished_files
    if missing:
        await session.execute(
            update(StoredFile)
            .where(among(StoredFile.id, missing), StoredFile.missing_at.is_(None))
            .values(missing_at=utcnow())
        )
    if restored:
        await session.execute(
            update(StoredFile).where(among(StoredFile.id, restored)).values(missing_at=None)
        )
    return Reconciled(expired=expired, missing=len(missing), restored=len(restored))


async def _rows(session: AsyncSession, stmt: Select[Any]) -> AsyncIterator[tuple[int, str]]:
    async for row_id, key in await session.stream(stmt):
        yield row_id, key


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
