"""Keeping the leases of the tasks a worker is running.

A worker acks a command once it holds the task's lease, so RabbitMQ's consumer timeout
never applies to long work; from then on the lease is the proof of life. One keeper
per worker process, every `poll_seconds`:
- extends every lease it holds, in one statement, and reports a cancel (status
  cancelled) or a lost lease (another attempt took over) so that the work stops
  between batches;
- finishes, in one statement, the leases of the tasks that ended since the last tick
  (their terminal event confirmed by the broker), so the sweeper will not re-dispatch
  them if the tracker is slow to apply that event. A lease that dies unfinished with
  its worker only means the sweeper may run the task again after `lease_seconds`,
  which the tracker absorbs (the task is already terminal, or its artifact key is the
  same).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from waybill_shared.db.pg import Pool
from waybill_shared.tasks.repository import LeaseKey, extend_leases, finish_leases, hand_back

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
        self._keeping: asyncio.Task[None] | None = None
        self._handing_back: set[asyncio.Task[None]] = set()

    def hold(self, key: LeaseKey) -> Lease:
        lease = self._held[key] = Lease(key)
        self._tick_soon()
        return lease

    def drop(self, lease: Lease) -> None:
        """Stop extending the lease; it runs out on its own (a hand-back, a loss)."""
        self._held.pop(lease.key, None)

    def give_up_all(self, reason: str) -> None:
        """This worker can no longer report on its tasks (it lost the broker: every
        event it emits now is lost, so each attempt would end handed back anyway).
        Stop them all and hand them back at once, so the sweeper re-dispatches them to
        a worker that can, instead of after this one's work or its lease."""
        held = list(self._held.values())
        if not held:
            return
        for lease in held:
            lease.lost = True
            self.drop(lease)
        log.warning("handing back every task", tasks=len(held), reason=reason)
        task = asyncio.create_task(self._hand_back([lease.key for lease in held], reason))
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def _hand_back(self, keys: list[LeaseKey], reason: str) -> None:
        try:
            async with self.pool.acquire() as conn:
                for key in keys:
                    await hand_back(conn, key, worker_id=self.worker_id, error=reason)
        except Exception as exc:  # the leases then run out on their own
            log.warning("could not hand the tasks back", error=repr(exc))

    def finish(self, lease: Lease) -> None:
        """The task's terminal event is confirmed: finish the lease at the next tick."""
        self.drop(lease)
        self._finished.append(lease.key)
        self._tick_soon()

    def _tick_soon(self) -> None:
        if self._keeping is None or self._keeping.done():
            self._keeping = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        while self._held or self._finished:
            await asyncio.sleep(self.poll_seconds)
            await self._tick()

    async def _tick(self) -> None:
        held = list(self._held.values())
        finished, self._finished = self._finished, []
        try:
            async with self.pool.acquire() as conn:
                if finished:
                    await finish_leases(conn, finished, worker_id=self.worker_id)
                if not held:
                    return
                status = await extend_leases(
                    conn,
                    [lease.key for lease in held],
                    worker_id=self.worker_id,
                    lease_seconds=self.lease_seconds,
                )
        except Exception as exc:  # the database may blink; the leases have slack
            log.warning("could not keep leases", error=repr(exc))
            self._finished.extend(finished)
            return
        for lease in held:
            found = status.get(lease.key)
            if found is None:
                lease.lost = True
            elif found == "cancelled":
                lease.cancelled = True

    async def close(self) -> None:
        """Stop, and finish the leases of the tasks that ended (on shutdown)."""
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeping
        self._held.clear()
        if self._finished:
            await self._tick()
