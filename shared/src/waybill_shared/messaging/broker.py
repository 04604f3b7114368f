"""A thin layer over aio-pika: connect, find the topology, publish with confirms (as
this service's principal), consume one by one or in batches, dead-letter with the
reason. Why this rather than FastStream: docs/DESIGN-NOTES.md, "Messaging"."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from waybill_shared import metrics
from waybill_shared.contracts.messages import Message
from waybill_shared.errors import is_unavailable
from waybill_shared.messaging.parsing import InvalidMessage, parse_message
from waybill_shared.messaging.topology import QueueSpec, Topology
from waybill_shared.settings import amqp_user_of

log = structlog.get_logger(__name__)

DEAD_REASON_HEADER = "x-waybill-dead-reason"
SOURCE_QUEUE_HEADER = "x-waybill-source-queue"
PRINCIPAL_HEADER = "x-waybill-principal"
PUBLISH_TIMEOUT = 10.0


class RejectMessage(Exception):
    """A handler's verdict that a message can never be processed: dead-letter it now."""


class MissingTopology(RuntimeError):
    """The vhost lacks an exchange or queue of the topology."""


Handler = Callable[[Any, AbstractIncomingMessage], Awaitable[None]]
BatchHandler = Callable[[list[Any]], Awaitable[None]]


class Broker:
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        prefetch: int = 4,
        service_users: frozenset[str] = frozenset(),
        heartbeat: int = 15,
    ) -> None:
        self.url = url
        self.heartbeat = heartbeat
        self.topology = topology
        self.prefetch = prefetch
        # Every message this process publishes carries its login as `user_id`, which
        # the broker verifies: the proof of who published it.
        self.username = amqp_user_of(url)
        self.service_users = service_users
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._on_lost: list[Callable[[], None]] = []
        self._closing = False

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url, timeout=10, heartbeat=self.heartbeat
        )
        self._connection.close_callbacks.add(self._connection_lost)
        try:
            self._channel = await self._connection.channel(publisher_confirms=True)
            await self.find_topology()
        except BaseException:
            await self.close()
            raise

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the connection is lost (reset, or silent past its
        heartbeats); the robust connection then reconnects on its own."""
        self._on_lost.append(callback)

    def _connection_lost(self, _: object, exc: BaseException | None = None) -> None:
        if self._closing:
            return
        log.warning("broker connection lost", error=repr(exc))
        for callback in self._on_lost:
            callback()

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("broker is not connected")
        return self._channel

    @property
    def is_connected(self) -> bool:
        """Connected now: false while the robust connection reconnects (a lost
        connection, or one that missed its heartbeats), not only after close()."""
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._connection.connected.is_set()
        )

    async def find_topology(self) -> None:
        """Look the exchanges and queues up (passively: the broker holds them from its
        definitions, and no service may create or delete one)."""
        t = self.topology
        try:
            for name in (t.commands_exchange, t.events_exchange, t.dead_letter_exchange):
                self._exchanges[name] = await self.channel.get_exchange(name)
            # Without its queue, a command would be dropped as unroutable.
            for spec in t.queues:
                await self.channel.get_queue(spec.name)
                await self.channel.get_queue(spec.dead_letter_queue)
        except aio_pika.exceptions.ChannelNotFoundEntity as exc:
            raise MissingTopology(
                f"{exc}: the broker lacks Waybill's topology on this vhost; load the "
                "definitions (python -m waybill_shared.messaging.definitions)"
            ) from exc

    async def publish(
        self,
        message: Message,
        *,
        exchange: str | None = None,
        routing_key: str | None = None,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm (the message is in a durable queue)."""
        if exchange is None:
            exchange = (
                self.topology.events_exchange
                if message.TYPE.endswith(".event")
                else self.topology.commands_exchange
            )
        key = routing_key or message.ROUTING_KEY
        await self.publish_raw(
            exchange=exchange,
            routing_key=key,
            body=message.model_dump_json().encode(),
            message_type=message.message_type(),
            message_id=message_id or str(uuid.uuid4()),
            headers=headers or {},
        )

    async def publish_raw(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_type: str | None,
        message_id: str,
        headers: dict[str, Any],
    ) -> None:
        ex = self._exchanges.get(exchange) or await self.channel.get_exchange(exchange)
        # A broker that is away must not hang the caller: fail fast, the outbox retries.
        await ex.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
                type=message_type,
                headers=headers,
                user_id=self.username,
            ),
            routing_key=routing_key,
            mandatory=False,
            timeout=PUBLISH_TIMEOUT,
        )

    def publish_soon(
        self, message: Message, *, message_id: str, routing_key: str | None = None
    ) -> asyncio.Future[None]:
        """Start publishing now and return the confirm to await later, so that several
        messages share one wait (publishes on one channel keep their order)."""
        return asyncio.ensure_future(
            self.publish(message, message_id=message_id, routing_key=routing_key)
        )

    async def dead_letter(
        self, incoming: AbstractIncomingMessage, spec: QueueSpec, reason: str
    ) -> None:
        """Park a message in the queue's dead-letter queue with the reason, then ack it."""
        headers = dict(incoming.headers or {})
        headers[DEAD_REASON_HEADER] = reason[:2000]
        headers[SOURCE_QUEUE_HEADER] = spec.name
        # The copy is published by this service: it names who sent the original, so
        # that a replay acts for the same principal (see `principal_of`).
        headers[PRINCIPAL_HEADER] = self.principal_of(incoming) or ""
        await self._exchanges[self.topology.dead_letter_exchange].publish(
            aio_pika.Message(
                incoming.body,
                content_type=incoming.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=incoming.message_id,
                type=incoming.type,
                headers=headers,
                user_id=self.username,
            ),
            routing_key=spec.name,
        )
        await incoming.ack()
        metrics.DEAD_LETTERS.labels(queue=spec.name).inc()
        log.warning(
            "message dead-lettered",
            queue=spec.name,
            reason=reason[:300],
            message_id=incoming.message_id,
        )

    def principal_of(self, message: AbstractIncomingMessage) -> str | None:
        """Who a message is from: its `user_id`, which the broker checked against the
        publisher's login. One of Waybill's own services may pass a message on for
        another principal (an administrator's replay of a dead letter): the message
        then names that principal in the `x-waybill-principal` header ("" for none),
        which counts only when a Waybill service published it."""
        user = message.user_id or None
        headers = message.headers or {}
        if user in self.service_users and PRINCIPAL_HEADER in headers:
            named = headers[PRINCIPAL_HEADER]
            if isinstance(named, bytes):
                named = named.decode("utf-8", "replace")
            return str(named) or None
        return user

    async def _consumer_queue(self, spec: QueueSpec, prefetch: int | None) -> AbstractQueue:
        """The queue on a channel of its own, so each consumer has its own prefetch
        (restored with it on reconnect) and its acks never wait behind publishes."""
        if self._connection is None:
            raise RuntimeError("broker is not connected")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch or self.prefetch)
        return await channel.get_queue(spec.name)

    async def consume(
        self,
        spec: QueueSpec,
        models: dict[str, type[Message]],
        handler: Handler,
        *,
        prefetch: int | None = None,
    ) -> None:
        """Consume `spec` with manual ack. The body is parsed into the model named by
        the `type` property (or the only model given); what does not parse is
        dead-lettered with the validation error. The handler acks (it may ack early,
        once a lease is held); if it returns without acking, the message is acked.
        A handler error requeues, until the delivery limit dead-letters it."""
        queue = await self._consumer_queue(spec, prefetch)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await self._dispatch(incoming, spec, models, handler)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        tag = await queue.consume(on_message, no_ack=False)
        self._consumers.append((queue, tag))

    async def consume_batches(
        self,
        spec: QueueSpec,
        models: dict[str, type[Message]],
        handler: BatchHandler,
        *,
        max_batch: int,
    ) -> None:
        """Consume `spec`, handing the handler every message that arrived while it was
        busy with the previous batch (up to `max_batch`), so a consumer that writes to
        a database commits once per batch instead of once per message. Each message is
        acked after its batch's handler returns. While the handler fails because a
        backing service is away, the batch is retried, with backoff, without being
        requeued; any other failure is retried message by message, so that only the
        bad message ends in the dead-letter queue. `max_batch` is also the prefetch."""
        queue = await self._consumer_queue(spec, max_batch)
        batcher = _Batcher(self, spec, models, handler, max_batch)
        tag = await queue.consume(batcher.on_message, no_ack=False)
        self._consumers.append((queue, tag))

    async def _dispatch(
        self,
        incoming: AbstractIncomingMessage,
        spec: QueueSpec,
        models: dict[str, type[Message]],
        handler: Handler,
    ) -> None:
        try:
            message = _parse(incoming, models)
        except InvalidMessage as exc:
            await self.dead_letter(incoming, spec, str(exc))
            return
        delay = 0.2
        while True:
            try:
                await handler(message, incoming)
                break
            except RejectMessage as exc:
                if not incoming.processed:
                    await self.dead_letter(incoming, spec, str(exc))
                return
            except asyncio.CancelledError:
                if not incoming.processed:
                    await incoming.nack(requeue=True)
                raise
            except Exception as exc:
                if incoming.processed or not is_unavailable(exc):
                    await self.handler_failed(incoming, spec, exc)
                    return
                # The database (or storage) is away: hold the delivery and try again,
                # with backoff. A requeue would count towards the delivery limit and
                # dead-letter good work within milliseconds of an outage.
                log.warning(
                    "handler waits for a backing service",
                    queue=spec.name,
                    error=repr(exc),
                    delay=delay,
                )
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                await incoming.nack(requeue=True)
                raise
            delay = min(delay * 2, 5.0)
        if not incoming.processed:
            await incoming.ack()

    async def handler_failed(
        self, incoming: AbstractIncomingMessage, spec: QueueSpec, exc: Exception
    ) -> None:
        """Requeue, until the queue's delivery limit: then dead-letter with the error."""
        deliveries = int(str((incoming.headers or {}).get("x-delivery-count", 0) or 0)) + 1
        log.exception("handler failed", queue=spec.name, deliveries=deliveries, exc_info=exc)
        if incoming.processed:
            return
        if deliveries >= self.topology.delivery_limit:
            await self.dead_letter(
                incoming, spec, f"failed {deliveries} times; last error: {exc!r}"
            )
        else:
            await incoming.nack(requeue=True)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count `task` as in-flight work that a graceful stop waits for."""
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def stop_consuming(self, grace: float) -> None:
        """Stop taking messages, let in-flight handlers finish within `grace` seconds;
        what is still running then is cancelled (its message goes back to the queue)."""
        for queue, tag in self._consumers:
            if not self.is_connected:
                break  # the broker forgot them with the connection; a cancel would wait for it
            try:
                await asyncio.wait_for(queue.cancel(tag), timeout=5)
            except Exception:  # the channel may already be gone
                log.warning("could not cancel consumer", queue=queue.name)
        self._consumers.clear()
        pending = set(self._in_flight)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)

    async def close(self) -> None:
        self._closing = True
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None


def _parse(incoming: AbstractIncomingMessage, models: dict[str, type[Message]]) -> Message:
    return parse_message(
        incoming.body,
        content_type=incoming.content_type,
        message_type=incoming.type,
        models=models,
    )


class _Batcher:
    """The consumer side of `Broker.consume_batches`."""

    def __init__(
        self,
        broker: Broker,
        spec: QueueSpec,
        models: dict[str, type[Message]],
        handler: BatchHandler,
        max_batch: int,
    ) -> None:
        self.broker = broker
        self.spec = spec
        self.models = models
        self.handler = handler
        self.max_batch = max_batch
        # Each message with the context it arrived in (its trace): a batch is applied in
        # its first message's, so its statements join that trace, not the one of
        # whichever message happened to start the drain.
        self.waiting: list[tuple[Message, AbstractIncomingMessage, contextvars.Context]] = []
        self.draining: asyncio.Task[None] | None = None

    async def on_message(self, incoming: AbstractIncomingMessage) -> None:
        try:
            message = _parse(incoming, self.models)
        except InvalidMessage as exc:
            await self.broker.dead_letter(incoming, self.spec, str(exc))
            return
        self.waiting.append((message, incoming, contextvars.copy_context()))
        if self.draining is None or self.draining.done():
            self.draining = asyncio.create_task(self._drain())
            self.broker.track(self.draining)

    async def _drain(self) -> None:
        while self.waiting:
            batch = self.waiting[: self.max_batch]
            del self.waiting[: self.max_batch]
            applying = [(message, incoming) for message, incoming, _ in batch]
            await asyncio.create_task(self._apply(applying), context=batch[0][2])

    async def _apply(self, batch: list[tuple[Message, AbstractIncomingMessage]]) -> None:
        delay = 0.2
        while True:
            try:
                await self.handler([message for message, _ in batch])
            except asyncio.CancelledError:
                for _, incoming in batch:
                    if not incoming.processed:
                        await incoming.nack(requeue=True)
                raise
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("batch waits for a backing service", error=repr(exc), delay=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if len(batch) > 1:
                    for one in batch:
                        await self._apply([one])
                else:
                    await self.broker.handler_failed(batch[0][1], self.spec, exc)
                return
            for _, incoming in batch:
                await incoming.ack()
            return
