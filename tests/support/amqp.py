"""The session's broker as another system meets it (pika): publish a command as a
principal; take what was dead-lettered."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from support.broker import Principal

if TYPE_CHECKING:
    from support.stack import Infra


def publish_command(
    infra: Infra,
    routing_key: str,
    body: bytes | Mapping[str, Any],
    *,
    message_type: str | None,
    principal: Principal,
    content_type: str = "application/json",
    message_id: str | None = None,
    user_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish to the commands exchange as another system would (confirmed), as
    `principal`: its AMQP user in the `user_id` property unless another is given
    ("" for none). A mapping is sent as JSON, with its task_id (or event_id) as the
    message id."""
    if isinstance(body, Mapping):
        message_id = message_id or str(body.get("task_id") or body.get("event_id"))
        body = json.dumps(body).encode()
    connection = pika.BlockingConnection(pika.URLParameters(principal.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            f"{infra.prefix}.commands",
            routing_key,
            body,
            pika.BasicProperties(
                content_type=content_type,
                type=message_type,
                delivery_mode=2,
                message_id=message_id or str(uuid.uuid4()),
                user_id=principal.user if user_id is None else (user_id or None),
                headers=headers,
            ),
        )
    finally:
        connection.close()


def take_all(channel: BlockingChannel, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message in `queue`, taken out of it: its body and headers."""
    taken = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((body, dict(properties.headers or {})))


def take_dead_letters(infra: Infra, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message parked in `queue`'s dead-letter queue, taken out of it."""
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    try:
        return take_all(connection.channel(), f"{queue}.dead")
    finally:
        connection.close()
