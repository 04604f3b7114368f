"""Transport: status events are applied in batches (one transaction each); provenance
records one by one."""

from __future__ import annotations

from aio_pika.abc import AbstractIncomingMessage

from waybill_shared import metrics
from waybill_shared.clock import utcnow
from waybill_shared.contracts.messages import ProvenanceRecorded, TaskEvent
from waybill_shared.db.models import User
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import Invalid, NotFound
from waybill_shared.messaging.broker import RejectMessage
from waybill_shared.provenance.recording import record_job
from waybill_shared.runtime import Runtime
from waybill_shared.tasks.repository import apply_events
from waybill_tracker.repository import first_delivery


class TrackerHandlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_task_events(self, events: list[TaskEvent]) -> None:
        now = utcnow()
        for event in events:
            metrics.QUEUE_LAG.labels(queue="tracker.events").observe(
                max((now - event.occurred_at).total_seconds(), 0.0)
            )
        async with self.runtime.db.acquire() as conn, conn.transaction():
            await apply_events(conn, events)

    async def on_provenance(
        self, message: ProvenanceRecorded, incoming: AbstractIncomingMessage
    ) -> None:
        """A tool run recorded by another system: its publisher must be allowed to act
        for the owner, then the same checks as POST /api/jobs. What cannot be recorded
        is dead-lettered with the reason."""
        refused = await self.runtime.principals.refusal(
            self.runtime.broker.principal_of(incoming), message.owner_id
        )
        if refused is not None:
            raise RejectMessage(f"provenance not recorded: refused: {refused}")
        try:
            async with unit_of_work(self.runtime.sessions) as session:
                if not await first_delivery(
                    session, message_id=str(message.event_id), message_type=message.message_type()
                ):
                    return
                user = await session.get(User, message.owner_id)
                if user is None:
                    raise NotFound(f"user {message.owner_id} not found")
                await record_job(session, user, message.job)
        except (NotFound, Invalid) as exc:
            raise RejectMessage(f"provenance not recorded: {exc}") from exc
