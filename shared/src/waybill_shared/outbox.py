"""Transactional outbox: "accepted means durable".

A command is written in the same transaction (often the same statement) as the task
it announces, and the answer (202) goes out after the commit. The relay then
publishes it with broker confirms and deletes the row.

Two ways in, one way out:
- `publish_soon(entries)`: whoever committed hands its rows over at once; rows handed
  over together are published together, their confirms awaited together.
- a scan every `interval` for rows older than `grace` that nobody published: those of
  a process that died between commit and publish, or that met the broker away. They
  wait until it is back; nothing accepted is lost, and a publish that happens twice
  (a relay dying between confirm and delete) is absorbed by idempotent consumers
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
class Prepared:
    """A message ready for the outbox table (see `row` for its columns)."""

    exchange: str
    routing_key: str
    message_type: str
    message_id: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    # The columns of an outbox row, in the order of OUTBOX_COLUMNS.
    def row(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.message_id,
            self.exchange,
            self.routing_key,
            self.message_type,
            self.body,
            to_json(self.headers),
        )

    def entry(self, row_id: int) -> OutboxEntry:
        return OutboxEntry(
            row_id,
            self.exchange,
            self.routing_key,
            self.message_type,
            self.message_id,
            self.body.encode(),
            self.headers,
        )


OUTBOX_COLUMNS = "message_id, exchange, routing_key, message_type, body, headers"


@dataclass(frozen=True)
class OutboxEntry:
    """A committed outbox row, to publish."""

    id: int
    exchange: str
    routing_key: str
    message_type: str
    message_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def prepare(message: Message, *, exchange: str, routing_key: str | None = None) -> Prepared:
    """The outbox row for `message`. The current trace context travels with it, so the
    publish joins the request's trace."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return Prepared(
        exchange,
        routing_key or message.ROUTING_KEY,
        message.message_type(),
        str(uuid.uuid4()),
        message.model_dump_json(),
        headers,
    )


async def enqueue(
    conn: Connection, message: Message, *, exchange: str, routing_key: str | None = None
) -> OutboxEntry:
    """Add a message to the outbox in the caller's transaction; hand the entry to
    `OutboxRelay.publish_soon` once that commits."""
    prepared = prepare(message, exchange=exchange, routing_key=routing_key)
    row_id = await conn.fetchval(
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        *prepared.row(),
    )
    return prepared.entry(row_id)


class OutboxRelay:
    def __init__(self, pool: Pool, broker: Broker, *, interval: float, grace: float = 5.0) -> None:
        self.pool = pool
        self.broker = broker
        self.interval = interval
        self.grace = grace
        self._handed: list[OutboxEntry] = []
        self._wake = asyncio.Event()

    def publish_soon(self, entries: list[OutboxEntry]) -> None:
        """Publish rows just committed (call it right after the commit)."""
        if entries:
            self._handed.extend(entries)
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
                if loop.time() >= next_scan:
                    next_scan = loop.time() + self.interval
                    await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: the scan retries them
                log.warning("outbox relay could not publish", error=repr(exc))

    async def _publish(self, entries: list[OutboxEntry]) -> None:
        """Publish the rows handed over, confirms awaited together, then delete them.
        A failure leaves them to a scan; no scan takes them while they are younger than
        `grace`, so two relays publish a row twice only when this took that long."""
        await asyncio.gather(*(self._send(e) for e in entries))
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::int[])", [e.id for e in entries]
            )

    async def scan(self, *, batch: int = 500) -> int:
        """Publish the rows nobody handed over (their process died between commit and
        publish, or met the broker away); returns how many."""
        published = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    f"""DELETE FROM outbox WHERE id IN (
                           SELECT id FROM outbox
                           WHERE created_at < now() - make_interval(secs => $2)
                           ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                       RETURNING id, {OUTBOX_COLUMNS}""",
                    batch,
                    self.grace,
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
