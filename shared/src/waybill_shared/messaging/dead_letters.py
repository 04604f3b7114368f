"""Dead letters, for administrators (the gateway's /api/admin/dead-letters): list what
was parked and why, replay it to the queue it came from once the cause is fixed.
Broker mechanics, kept here beside the broker so that no service imports aio-pika."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from waybill_shared.errors import NotFound
from waybill_shared.messaging.broker import (
    DEAD_REASON_HEADER,
    PRINCIPAL_HEADER,
    SOURCE_QUEUE_HEADER,
    Broker,
)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str | None
    type: str | None
    reason: str | None
    principal: str | None  # the AMQP user that sent it (a replay acts for it)
    body_preview: str
    size: int


def _queues(broker: Broker, queue: str | None) -> list[str]:
    names = [spec.name for spec in broker.topology.queues]
    if queue is None:
        return names
    if queue not in names:
        raise NotFound(f"no consumer queue named {queue!r}; known: {', '.join(names)}")
    return [queue]


def _describe(broker: Broker, queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    death = headers.get("x-death")
    reason = headers.get(DEAD_REASON_HEADER)
    if reason is None and isinstance(death, list) and death and isinstance(death[0], dict):
        broker_reason = death[0].get("reason")
        if isinstance(broker_reason, bytes):
            broker_reason = broker_reason.decode()
        reason = f"broker: {broker_reason}"
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        type=message.type,
        reason=str(reason) if reason is not None else None,
        principal=broker.principal_of(message),
        body_preview=message.body[:500].decode("utf-8", "replace"),
        size=len(message.body),
    )


async def list_dead_letters(
    broker: Broker, *, queue: str | None, limit: int, offset: int
) -> tuple[list[DeadLetter], int]:
    """Peek without removing: every message taken is handed back (requeued). Returns
    one page, queue after queue (`offset` counts from the head of the first queue),
    and how many messages are parked in all. A quorum queue puts a message handed
    back at its tail, so a queue's order changes as it is peeked: pages are a view
    of the queues at the time of the call."""
    found: list[DeadLetter] = []
    total = 0
    skip = offset
    for name in _queues(broker, queue):
        dead = await broker.channel.get_queue(f"{name}.dead", ensure=False)
        parked = await _parked(dead)
        total += parked
        if skip >= parked or len(found) >= limit:
            skip = max(skip - parked, 0)
            continue
        taken: list[AbstractIncomingMessage] = []
        try:
            while len(taken) < skip + limit - len(found):
                message = await dead.get(no_ack=False, fail=False)
                if message is None:
                    break
                taken.append(message)
            found += [_describe(broker, name, m) for m in taken[skip:]]
        finally:
            for message in taken:
                await message.nack(requeue=True)
            await _settle(dead, parked)
        skip = 0
    return found, total


async def _parked(dead: AbstractQueue) -> int:
    # Declared again for a fresh count: the channel keeps its first answer.
    return (await dead.declare()).message_count or 0


async def _settle(dead: AbstractQueue, parked: int) -> None:
    """Wait (at most 2 s) until the messages handed back are counted again, so that
    the next call counts them."""
    for _ in range(200):
        if await _parked(dead) >= parked:
            return
        await asyncio.sleep(0.01)


async def replay_dead_letters(broker: Broker, *, queue: str | None, limit: int) -> int:
    """Publish parked messages back to their queue (without the dead-letter headers).
    All are taken before any is published: one refused again is parked again, and is
    not taken (and replayed) a second time."""
    replayed = 0
    for name in _queues(broker, queue):
        dead = await broker.channel.get_queue(f"{name}.dead", ensure=False)
        taken: list[AbstractIncomingMessage] = []
        while replayed + len(taken) < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
        for message in taken:
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in (DEAD_REASON_HEADER, SOURCE_QUEUE_HEADER, "x-death", "x-delivery-count")
            }
            # Published by the gateway, for whoever sent it first: the replay acts for
            # that principal, never as the gateway (which may act for anyone).
            headers[PRINCIPAL_HEADER] = broker.principal_of(message) or ""
            await broker.channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type,
                    type=message.type,
                    message_id=message.message_id,
                    headers=headers,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    user_id=broker.username,
                ),
                routing_key=name,
            )
            await message.ack()
            replayed += 1
    return replayed
