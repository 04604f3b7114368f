"""Generate docs/asyncapi.yaml (AsyncAPI 2.6) from the message contracts and the
broker topology, so other systems can publish and consume without reading Python.

    uv run python scripts/asyncapi.py > docs/asyncapi.yaml
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from waybill_shared.contracts.messages import COMMANDS, EVENTS, TaskEvent
from waybill_shared.messaging.topology import Topology


def _definitions() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in (*COMMANDS, *EVENTS):
        full = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(full.pop("$defs", {}))
        defs[model.__name__] = full
    return dict(sorted(defs.items()))


def document(prefix: str = "waybill") -> dict[str, Any]:
    topology = Topology(prefix)
    headers = {
        "type": "object",
        "properties": {
            "traceparent": {"type": "string", "description": "W3C trace context (optional)"},
            "x-waybill-dead-reason": {
                "type": "string",
                "description": "set on dead-lettered copies",
            },
        },
    }
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for model in COMMANDS:
        name = model.__name__
        messages[name] = {
            "name": model.message_type(),
            "title": name,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "description": (model.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": headers,
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"amqp": {"messageType": model.message_type(), "deliveryMode": 2}},
        }
        queue = next(q for q in topology.queues if model.ROUTING_KEY in q.routing_keys)
        channels[model.ROUTING_KEY] = {
            "description": f"Commands to exchange {topology.commands_exchange!r} with routing key "
            f"{model.ROUTING_KEY!r}; consumed from quorum queue {queue.name!r} "
            f"(dead letters in {queue.dead_letter_queue!r}).",
            "publish": {
                "operationId": f"publish{name}",
                "message": {"$ref": f"#/components/messages/{name}"},
            },
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": topology.commands_exchange,
                        "type": "direct",
                        "durable": True,
                        "vhost": "/",
                    },
                }
            },
        }
    messages["TaskEvent"] = {
        "name": TaskEvent.message_type(),
        "title": "TaskEvent",
        "summary": "Status events of every task: processing, progress, item, completed, failed, cancelled.",
        "description": (TaskEvent.__doc__ or "").strip(),
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": "#/components/schemas/TaskEvent"},
        "bindings": {"amqp": {"messageType": TaskEvent.message_type(), "deliveryMode": 2}},
    }
    channels["task.{kind}.{event}"] = {
        "description": f"Events on the topic exchange {topology.events_exchange!r}. Bind a queue of your "
        "own (e.g. `task.data_export.#`) to follow tasks; message_id is task:attempt:seq.",
        "parameters": {
            "kind": {
                "schema": {
                    "type": "string",
                    "enum": [
                        "data_export",
                        "history_export",
                        "history_import",
                        "workflow_extraction",
                    ],
                }
            },
            "event": {
                "schema": {
                    "type": "string",
                    "enum": ["processing", "progress", "item", "completed", "failed", "cancelled"],
                }
            },
        },
        "subscribe": {
            "operationId": "receiveTaskEvent",
            "message": {"$ref": "#/components/messages/TaskEvent"},
        },
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": topology.events_exchange,
                    "type": "topic",
                    "durable": True,
                    "vhost": "/",
                },
            }
        },
    }
    return {
        "asyncapi": "2.6.0",
        "id": "urn:waybill:messages",
        "info": {
            "title": "Waybill message contracts",
            "version": "1.0.0",
            "description": "Commands other systems publish to Waybill and the status events it emits. "
            "Every message is JSON with content_type application/json, a message_id (idempotency) and "
            "its type (name.vN) in the AMQP `type` property. Exchange and queue names start with the "
            "deployment's prefix (WAYBILL_AMQP_PREFIX, default 'waybill').",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "url": "amqp://localhost:5672/",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
            }
        },
        "channels": channels,
        "components": {"messages": messages, "schemas": _definitions()},
    }


def render() -> str:
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
