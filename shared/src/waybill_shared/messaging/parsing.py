"""From a delivery's bytes and AMQP properties to its contract model, or the precise
reason why not (the reason a refused message is dead-lettered with). Pure: no
broker code, so every case is tested directly."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from waybill_shared.contracts.messages import Message

MAX_BODY_BYTES = 16 * 1024 * 1024


class InvalidMessage(Exception):
    """A message that can never be processed as it is; the text says why."""


def parse_message(
    body: bytes,
    *,
    content_type: str | None,
    message_type: str | None,
    models: dict[str, type[Message]],
) -> Message:
    """`models` by message type (the AMQP `type` property); a message without a type
    is read as the only model, when there is only one."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidMessage(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    if content_type not in (None, "", "application/json"):
        raise InvalidMessage(f"content_type {content_type!r} is not application/json")
    model = models.get(message_type or "")
    if model is None:
        if message_type or len(models) != 1:
            known = ", ".join(sorted(models))
            raise InvalidMessage(f"unknown message type {message_type!r}; expected one of: {known}")
        model = next(iter(models.values()))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"body is not UTF-8: {exc}") from exc
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"body is not JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidMessage(f"does not match {model.message_type()}: {errors}") from exc
