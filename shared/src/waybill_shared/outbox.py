"""Transactional outbox: "accepted means durable".

A command is written in the same transaction as the task it announces, and the
answer (202) goes out after the commit. The relay then publishes it with broker
confirms and deletes the row, in a transaction that also holds the row's lock, so a
second relay (another gateway replica, the tracker) never publishes it too.

Two ways in, one way out:
- `publish_soon(entries)`: the request that committed hands its rows over at once;
  rows committed together are published together, confirms awaited together.
- a scan every `interval` (and on `kick()`) for rows nobody handed over: those of a
  process that died between commit and publish, or that met the broker away. Those
  wait until it is back; nothing accepted is lost, and a publish that happens twice
  (a relay dying between confirm and commit) is absorbed by idempotent consumers
  (message_id, task uuid).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import structlog
from opentelemetry import propagate, trace

from waybill_shared import metrics
from waybill_shared.contracts.messages import Message
from waybill_shared.db.pg import Connection, Pool, from_json, to_json
from waybill_shared.messaging.broker import Broker

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    exchange: str
    routing_key: str
    message_type: str
    message_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def enqueue(
    conn: Connection, message: Message, *, exchange: str, routing_key: str | None = None
) -> OutboxEntry:
    """Add a message to the outbox in the caller's transaction. The current trace
    context travels with it, so the publish joins the request's trace."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    body = message.model_dump_json()
    message_id = str(uuid.uuid4())
    key = routing_key or message.ROUTING_KEY
    row_id = await conn.fetchval(
        """INSERT INTO outbox (message_id, exchange, routing_key, message_type, body, headers)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        message_id,
        exchange,
        key,
        message.message_type(),
        body,
        to_json(headers),
    )
    return OutboxEntry(
        row_id, exchange, key, message.message_type(), message_id, body.encode(), headers
    )


class OutboxRelay:
    def __init__(self, pool: Pool, broker: Broker, *, interval: float) -> None:
        self.pool = pool
        self.broker = broker
        self.interval = interval
        self._handed: list[OutboxEntry] = []
        self._wake = asyncio.Event()
        self._scan_now = False

    def publish_soon(self, entries: list[OutboxEntry]) -> None:
        """Publish rows just committed (called right after the commit)."""
        if entries:
            self._handed.extend(entries)
            self._wake.set()

    def kick(self) -> None:
        """Scan the table soon (rows committed without being handed over)."""
        self._scan_now = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_scan = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            try:
                while self._handed:
                    batch, self._handed = self._handed, []
                    await self._publish(batch)
                if self._scan_now or loop.time() >= next_scan:
                    self._scan_now = False
                    next_scan = loop.time() + self.interval
                    await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: the scan retries them
                log.warning("outbox relay could not publish", error=repr(exc))

    async def _publish(self, entries: list[OutboxEntry]) -> None:
        """Take the rows (those another relay has not published yet), publish them
        all, then delete them; a failure rolls back and leaves them to a scan."""
        async with self.pool.acquire() as conn, conn.transaction():
            taken = set(
                await conn.fetchval(
                    "WITH taken AS (DELETE FROM outbox WHERE id = ANY($1::int[]) RETURNING id) "
                    "SELECT coalesce(array_agg(id), '{}') FROM taken",
                    [e.id for e in entries],
                )
            )
            await asyncio.gather(*(self._send(e) for e in entries if e.id in taken))

    async def scan(self, *, batch: int = 500) -> int:
        """Publish the rows nobody handed over; returns how many."""
        published = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """DELETE FROM outbox WHERE id IN (
                           SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                       RETURNING id, exchange, routing_key, message_type, message_id, body,
                                 headers""",
                    batch,
                )
                entries = [
                    OutboxEntry(
                        r["id"],
                        r["exchange"],
                        r["routing_key"],
                        r["message_type"],
                        r["message_id"],
                        r["body"].encode(),
                        from_json(r["headers"]) or {},
                    )
                    for r in rows
                ]
                await asyncio.gather(*(self._send(e) for e in entries))
            published += len(entries)
            if len(entries) < batch:
                break
        async with self.pool.acquire() as conn:
            metrics.OUTBOX_PENDING.set(await conn.fetchval("SELECT count(*) FROM outbox"))
        return published

    async def _send(self, entry: OutboxEntry) -> None:
        ctx = propagate.extract(entry.headers)
        with tracer.start_as_current_span(f"outbox publish {entry.routing_key}", context=ctx):
            await self.broker.publish_raw(
                exchange=entry.exchange,
                routing_key=entry.routing_key,
                body=entry.body,
                message_type=entry.message_type,
                message_id=entry.message_id,
                headers={},
            )
