"""The tracker's scheduled work: lease sweeping, TTL cleanup and the storage reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from waybill_shared.outbox import OutboxRelay
from waybill_shared.runtime import Runtime
from waybill_shared.tasks.retention import (
    expire_artifacts,
    reconcile_storage,
    redispatch_lost_tasks,
)

log = structlog.get_logger(__name__)


async def sweep_leases(runtime: Runtime, relay: OutboxRelay) -> None:
    async with runtime.db.acquire() as conn, conn.transaction():
        commands, failed = await redispatch_lost_tasks(
            conn, runtime.topology, max_attempts=runtime.settings.max_attempts
        )
    relay.publish_soon(commands)
    if commands or failed:
        log.info("lease sweep", redispatched=len(commands), failed=failed)


async def cleanup_expired(runtime: Runtime) -> None:
    async with runtime.db.acquire() as conn, conn.transaction():
        count = await expire_artifacts(conn, runtime.storage)
    if count:
        log.info("expired artifacts removed", count=count)


async def reconcile(runtime: Runtime) -> None:
    async with runtime.db.acquire() as conn, conn.transaction():
        found = await reconcile_storage(conn, runtime.storage)
    if found.expired or found.missing or found.restored:
        log.warning(
            "storage reconcile: the database said more than storage holds",
            expired_tasks=found.expired,
            missing_files=found.missing,
            restored_files=found.restored,
        )


async def every(seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
    """Run `job` forever on a fixed interval; one failure is logged, not fatal."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled job failed", job=name)
        await asyncio.sleep(seconds)
