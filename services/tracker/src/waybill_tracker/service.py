"""The tracker's scheduled work: lease sweeping, TTL cleanup and the storage reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from waybill_shared.errors import is_unavailable
from waybill_shared.outbox import OutboxRelay
from waybill_shared.runtime import Runtime
from waybill_shared.tasks.retention import (
    expire_artifacts,
    reconcile_storage,
    redispatch_lost_tasks,
)

log = structlog.get_logger(__name__)


class LeaseSweeper:
    """Re-dispatch the tasks whose lease ran out (their worker died).

    A lease that ran out while the database was away says nothing about its worker:
    no keeper could extend it, nor finish the lease of a task whose terminal event
    waits in the tracker's queue. So after a sweep met the database away, the next
    sweeps wait one lease period from its return, time for every live worker to
    extend or finish its leases and for the tracker to apply the queued events;
    re-dispatching at once would run finished or running work a second time."""

    def __init__(self, runtime: Runtime, relay: OutboxRelay) -> None:
        self.runtime = runtime
        self.relay = relay
        self.after_outage = False
        self.resume_at = 0.0

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self.resume_at:
            return
        try:
            async with self.runtime.db.acquire() as conn:
                if self.after_outage:
                    await conn.fetchval("SELECT 1")
                    self.after_outage = False
                    self.resume_at = loop.time() + self.runtime.settings.lease_seconds
                    log.info("database back: lease sweeps resume after one lease period")
                    return
                async with conn.transaction():
                    commands, failed = await redispatch_lost_tasks(
                        conn, self.runtime.topology, max_attempts=self.runtime.settings.max_attempts
                    )
        except Exception as exc:
            if is_unavailable(exc):
                self.after_outage = True
            raise
        self.relay.publish_soon(commands)
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
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("scheduled job waits for a backing service", job=name, error=repr(exc))
            else:
                log.exception("scheduled job failed", job=name)
        await asyncio.sleep(seconds)
