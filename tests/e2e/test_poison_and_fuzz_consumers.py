"""Every consumer survives malformed messages (each is dead-lettered with a reason),
and a message that passes validation but fails its handler every time is parked after
the delivery limit while the consumer goes on serving others."""

from __future__ import annotations

import json
import time
import uuid

import pika

from support.amqp import publish_command, take_all
from support.stack import Stack, finished, upload, wait_for

BAD_BODIES = [
    (b"\xff\xfe\x00", "application/json"),  # not UTF-8
    (b"[1, 2, 3]", "application/json"),  # JSON, not an object
    (b'{"task_id": 5}', "application/json"),  # wrong types, missing fields
    (b"x" * (17 * 1024 * 1024), "application/json"),  # over the body limit
    (b"{}", "text/plain"),  # wrong content type
]


def test_every_consumer_dead_letters_malformed_messages(stack: Stack) -> None:
    prefix = stack.infra.prefix
    targets = [
        (
            f"{prefix}.commands",
            "export.requested",
            f"{prefix}.export.requests",
            "waybill.data_export.requested.v1",
        ),
        (
            f"{prefix}.commands",
            "extraction.requested",
            f"{prefix}.extraction.requests",
            "waybill.workflow_extraction.requested.v1",
        ),
        (
            f"{prefix}.commands",
            "provenance.recorded",
            f"{prefix}.provenance.events",
            "waybill.provenance.recorded.v1",
        ),
        (
            f"{prefix}.events",
            "task.data_export.progress",
            f"{prefix}.tracker.events",
            "waybill.task.event.v1",
        ),
    ]
    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    for _, _, queue, _ in targets:
        take_all(channel, f"{queue}.dead")
    for exchange, key, _, type_ in targets:
        for body, content_type in BAD_BODIES:
            channel.basic_publish(
                exchange,
                key,
                body,
                pika.BasicProperties(
                    content_type=content_type,
                    type=type_,
                    delivery_mode=2,
                    message_id=str(uuid.uuid4()),
                    headers={"odd": [1, {"x": None}], "x-delivery-count": "nope"},
                ),
            )
    for _, _, queue, _ in targets:
        dead: list[dict[str, object]] = []
        wait_for(
            lambda q=queue, d=dead: (
                d.extend(h for _, h in take_all(channel, f"{q}.dead")) or len(d) >= len(BAD_BODIES)
            ),
            timeout=60,
            message=f"dead letters of {queue}",
        )
        assert len(dead) == len(BAD_BODIES)
        assert all(h.get("x-waybill-dead-reason") for h in dead), dead
    connection.close()
    for name, service in stack.services.items():
        assert service.process is not None and service.process.poll() is None, f"{name} died"
        assert service.ready(), name
    with stack.new_user() as user:
        f = upload(user, "after-fuzz.txt", b"ok")
        job = user.post(
            "/api/data-export/jobs",
            json={"name": "after", "file_ids": [f["id"]], "export_format": "zip"},
        )
        assert finished(user, job.json()["id"])["status"] == "completed"


def test_poison_message_is_parked_after_the_delivery_limit(stack: Stack) -> None:
    """Valid by its contract, from a publisher that may act for anyone, but its user
    does not exist: registering the task fails every time (a foreign key), so the
    handler fails on every delivery."""
    prefix = stack.infra.prefix
    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    take_all(channel, f"{prefix}.export.requests.dead")
    poison = {
        "task_id": str(uuid.uuid4()),
        "owner_id": 2_000_000_000,
        "name": "poison",
        "file_ids": [1],
        "export_format": "zip",
    }
    published_at = time.monotonic()
    publish_command(
        stack.infra,
        "export.requested",
        json.dumps(poison).encode(),
        message_type="waybill.data_export.requested.v1",
        principal=stack.publisher,
    )
    with stack.new_user() as user:  # meanwhile, the worker serves others
        f = upload(user, "meanwhile.txt", b"still served")
        job = user.post(
            "/api/data-export/jobs",
            json={"name": "ok", "file_ids": [f["id"]], "export_format": "zip"},
        )
        assert finished(user, job.json()["id"])["status"] == "completed"
    parked: list[dict[str, object]] = []
    wait_for(
        lambda: (
            parked.extend(h for _, h in take_all(channel, f"{prefix}.export.requests.dead"))
            or parked
        ),
        timeout=60,
        message="the poison message parked",
    )
    connection.close()
    reason = str(parked[0]["x-waybill-dead-reason"])
    assert "failed 5 times" in reason and "ForeignKeyViolation" in reason, reason
    print(
        f"poison command parked after 5 deliveries, {time.monotonic() - published_at:.1f} s "
        "after it was published; an export sent meanwhile completed"
    )
