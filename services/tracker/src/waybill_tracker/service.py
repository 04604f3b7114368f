"""The tracker's scheduled work: lease sweeping, TTL cleanup and the storage reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from waybill_shared.db.session import unit_of_work
from waybill_shared.outbox import OutboxRelay
from waybill_shared.retention import expire_artifacts, reconcile_storage, redispatch_lost_tasks
from waybill_shared.runtime import Runtime

log = structlog.get_logger(__name__)


async def sweep_leases(runtime: Runtime, relay: OutboxRelay) -> None:
    async with unit_of_work(runtime.sessions) as session:
        redispatched, failed = await redispatch_lost_tasks(
            session, runtime.topology, max_attempts=runtime.settings.max_attempts
        )
    if redispatched:
        relay.kick()
    if redispatched or failed:
        log.info("lease sweep", redispatched=redispatched, failed=failed)


async def cleanup_expired(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        count = await expire_artifacts(session, runtime.storage)
    if count:
        log.info("expired artifacts removed", count=count)


async def reconcile(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        found = await reconcile_storage(session, runtime.storage)
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
