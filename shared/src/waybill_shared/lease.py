"""Keeping a task's lease while working on it.

A worker acks the command once it holds the lease, so RabbitMQ's consumer timeout
never applies to long work; from then on the lease is the proof of life. The keeper
extends it every `poll_seconds` and reports a cancel (status cancelled) or a lost
lease (another attempt took over) so the work stops between batches.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waybill_shared.db.session import unit_of_work
from waybill_shared.tasks import heartbeat

log = structlog.get_logger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        task_id: int,
        worker_id: str,
        attempt: int,
        lease_seconds: float,
        poll_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.task_id = task_id
        self.worker_id = worker_id
        self.attempt = attempt
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.cancelled = False
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    @property
    def should_stop(self) -> bool:
        return self.cancelled or self.lost

    async def check(self) -> None:
        try:
            async with unit_of_work(self.sessions) as session:
                status = await heartbeat(
                    session,
                    task_id=self.task_id,
                    worker_id=self.worker_id,
                    attempt=self.attempt,
                    lease_seconds=self.lease_seconds,
                )
        except Exception as exc:  # the database may blink; the lease has slack
            log.warning("heartbeat failed", task_id=self.task_id, error=repr(exc))
            return
        if status is None:
            self.lost = True
        elif status == "cancelled":
            self.cancelled = True

    async def _run(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(self.poll_seconds)
            await self.check()

    async def __aenter__(self) -> LeaseKeeper:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
