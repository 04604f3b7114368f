"""Keeping the leases of the tasks a worker is running.

A worker acks a command once it holds the task's lease, so RabbitMQ's consumer timeout
never applies to long work; from then on the lease is the proof of life. One keeper
per worker process extends every lease it holds in a single statement every
`poll_seconds`, and reports a cancel (status cancelled) or a lost lease (another
attempt took over) so that the work stops between batches. When a task ends, its
lease is finished in the next flush, together with those of any task that ended
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from waybill_shared.db.pg import Pool
from waybill_shared.tasks.repository import LeaseKey, extend_leases, finish_leases

log = structlog.get_logger(__name__)


@dataclass(eq=False)
class Lease:
    key: LeaseKey
    cancelled: bool = False
    lost: bool = False

    @property
    def should_stop(self) -> bool:
        return self.cancelled or self.lost


class LeaseKeeper:
    def __init__(
        self, pool: Pool, *, worker_id: str, lease_seconds: float, poll_seconds: float
    ) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._held: dict[LeaseKey, Lease] = {}
        self._finished: list[LeaseKey] = []
        self._flushing: asyncio.Task[None] | None = None
        self._keeping: asyncio.Task[None] | None = None

    def hold(self, key: LeaseKey) -> Lease:
        lease = self._held[key] = Lease(key)
        if self._keeping is None or self._keeping.done():
            self._keeping = asyncio.create_task(self._keep())
        return lease

    def drop(self, lease: Lease) -> None:
        """Stop extending the lease; it runs out on its own (a hand-back, a loss)."""
        self._held.pop(lease.key, None)

    def finish(self, lease: Lease) -> None:
        """The task's terminal event is confirmed: finish the lease (batched)."""
        self.drop(lease)
        self._finished.append(lease.key)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                async with self.pool.acquire() as conn:
                    await finish_leases(conn, batch, worker_id=self.worker_id)
            except Exception as exc:  # the lease then runs out; the tracker sees it done
                log.warning("could not finish leases", count=len(batch), error=repr(exc))

    async def _keep(self) -> None:
        while self._held:
            await asyncio.sleep(self.poll_seconds)
            held = list(self._held.values())
            if not held:
                return
            try:
                async with self.pool.acquire() as conn:
                    status = await extend_leases(
                        conn,
                        [lease.key for lease in held],
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                    )
            except Exception as exc:  # the database may blink; the lease has slack
                log.warning("could not extend leases", error=repr(exc))
                continue
            for lease in held:
                found = status.get(lease.key)
                if found is None:
                    lease.lost = True
                elif found == "cancelled":
                    lease.cancelled = True

    async def close(self) -> None:
        """Stop extending, and finish the leases of the tasks that ended (on shutdown)."""
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeping
        if self._flushing is not None:
            await self._flushing
