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
from waybill_shared.principals import PRINCIPAL_NAME


def _definitions() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in (*COMMANDS, *EVENTS):
        full = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(full.pop("$defs", {}))
        defs[model.__name__] = full
    return dict(sorted(defs.items()))


VERSION = "2.0.0"
VERSION_NOTE = (
    "Version 2.0.0 (a breaking change of 1.0.0): a command carries its publisher's AMQP "
    "user in the `user_id` property (RabbitMQ refuses a value other than the connection's "
    "login; Waybill refuses a command without one, or from a user that is not a service "
    "account allowed to act for `owner_id`); task events are routed as "
    "`task.{principal}.{kind}.{event}` (1.0.0: `task.{kind}.{event}`), their bodies "
    "unchanged, and the broker admits a principal's bindings to its own events only."
)


def document(prefix: str = "waybill", vhost: str = "waybill") -> dict[str, Any]:
    topology = Topology(prefix)
    headers = {
        "type": "object",
        "properties": {
            "traceparent": {"type": "string", "description": "W3C trace context (optional)"},
            "x-waybill-dead-reason": {
                "type": "string",
                "description": "set on dead-lettered copies",
            },
            "x-waybill-principal": {
                "type": "string",
                "description": "set by Waybill on dead-lettered copies and their replays: the "
                "AMQP user that sent the original (counts only from Waybill's own services)",
            },
        },
    }

    def publish_bindings() -> dict[str, Any]:
        return {
            "amqp": {
                "userId": "the publisher's AMQP user (required: its service account's)",
                "deliveryMode": 2,
            }
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
                "bindings": publish_bindings(),
            },
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": topology.commands_exchange,
                        "type": "direct",
                        "durable": True,
                        "vhost": vhost,
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
    channels[TaskEvent.ROUTING_KEY] = {
        "description": f"Events on the topic exchange {topology.events_exchange!r}. `principal` is "
        "the AMQP user that asked for the task (a service account; the gateway's user for "
        "tasks asked for over HTTP). Bind a queue of your own to your events, e.g. "
        "`task.<your user>.data_export.#`: the broker refuses a binding to another "
        "principal's. message_id is task:attempt:seq; a refused command's `failed` event has "
        "message_id task:refused.",
        "parameters": {
            "principal": {
                "schema": {"type": "string", "pattern": PRINCIPAL_NAME.pattern},
            },
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
                    "vhost": vhost,
                },
            }
        },
    }
    return {
        "asyncapi": "2.6.0",
        "id": "urn:waybill:messages",
        "info": {
            "title": "Waybill message contracts",
            "version": VERSION,
            "description": "Commands other systems publish to Waybill and the status events it emits. "
            "Every message is JSON with content_type application/json, a message_id (idempotency) and "
            "its type (name.vN) in the AMQP `type` property. Exchange and queue names start with the "
            "deployment's prefix (WAYBILL_AMQP_PREFIX, default 'waybill'), on the deployment's vhost "
            "(default 'waybill'). Another system publishes as a service account's AMQP user "
            "(docs/PRINCIPALS.md). " + VERSION_NOTE,
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "url": f"amqp://localhost:5672/{vhost}",
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
