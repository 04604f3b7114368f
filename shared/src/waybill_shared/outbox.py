"""Transactional outbox: "accepted means durable".

The gateway writes a task and its command in one transaction and answers 2xx after
the commit; a relay then publishes pending rows with broker confirms and marks them.
If the broker is away, rows wait and are published when it is back; nothing accepted
is lost, and a publish that happens twice (relay crash between confirm and mark) is
absorbed by idempotent consumers (message_id, task uuid).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import structlog
from opentelemetry import propagate, trace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waybill_shared import metrics
from waybill_shared.contracts.messages import Message
from waybill_shared.db.models import OutboxMessage
from waybill_shared.messaging.broker import Broker
from waybill_shared.tasks import utcnow

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)


def enqueue(
    session: AsyncSession, message: Message, *, exchange: str, routing_key: str | None = None
) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction. The current trace
    context travels with it, so the publish joins the request's trace."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    row = OutboxMessage(
        message_id=str(uuid.uuid4()),
        exchange=exchange,
        routing_key=routing_key or message.ROUTING_KEY,
        message_type=message.message_type(),
        body=message.model_dump(mode="json"),
        headers=headers,
    )
    session.add(row)
    return row


class OutboxRelay:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], broker: Broker, *, interval: float
    ) -> None:
        self.sessions = sessions
        self.broker = broker
        self.interval = interval
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Publish soon (called right after a commit that added rows)."""
        self._wake.set()

    async def publish_pending(self, *, batch: int = 200) -> int:
        published = 0
        async with self.sessions() as session:
            rows = list(
                (
                    await session.execute(
                        select(OutboxMessage)
                        .where(OutboxMessage.published_at.is_(None))
                        .order_by(OutboxMessage.id)
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            try:
                for row in rows:
                    ctx = propagate.extract(row.headers or {})
                    with tracer.start_as_current_span(
                        f"outbox publish {row.routing_key}", context=ctx
                    ):
                        await self.broker.publish_raw(
                            exchange=row.exchange,
                            routing_key=row.routing_key,
                            body=json.dumps(row.body).encode(),
                            message_type=row.message_type,
                            message_id=row.message_id,
                            headers={},
                        )
                    row.published_at = utcnow()
                    published += 1
            finally:
                await session.commit()
        return published

    async def pending_count(self) -> int:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(func.count()).where(OutboxMessage.published_at.is_(None))
                )
            ).scalar_one()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            try:
                while await self.publish_pending() > 0:
                    pass
                metrics.OUTBOX_PENDING.set(await self.pending_count())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: retry next round
                log.warning("outbox relay could not publish", error=repr(exc))
