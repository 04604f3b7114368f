"""At-least-once delivery, exactly-once effect: a command delivered twice makes one
task, one artifact and one completed event; replayed status events change nothing."""

from __future__ import annotations

import json
import uuid

import pika

from support.stack import Stack, finished, upload, wait_for


def test_command_and_events_delivered_twice(stack: Stack) -> None:
    prefix = stack.infra.prefix
    with stack.new_user() as user:
        f = upload(user, "twice.txt", b"once is enough")
        owner = user.get("/api/users/me").json()["id"]
        task_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "task_id": task_id,
                "owner_id": owner,
                "name": "twice",
                "file_ids": [f["id"]],
                "export_format": "zip",
            }
        ).encode()
        publisher = stack.publisher
        connection = pika.BlockingConnection(pika.URLParameters(publisher.url))
        channel = connection.channel()
        channel.confirm_delivery()
        # A tap on the publisher's events, to replay them afterwards.
        tap = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(
            tap, f"{prefix}.events", routing_key=f"task.{publisher.user}.data_export.#"
        )
        props = pika.BasicProperties(
            content_type="application/json",
            type="waybill.data_export.requested.v1",
            delivery_mode=2,
            message_id=task_id,
            user_id=publisher.user,
        )
        for _ in range(2):
            channel.basic_publish(f"{prefix}.commands", "export.requested", body, props)
        job = wait_for(
            lambda: next(
                (j for j in user.get("/api/data-export/jobs").json() if j["task_id"] == task_id),
                None,
            ),
            message="the task",
        )
        done = finished(user, job["id"])
        assert done["status"] == "completed"
        events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
        assert [e["event_type"] for e in events].count("completed") == 1
        assert user.get("/api/data-export/jobs").headers["X-Total-Count"] == "1"

        # Replay every status event (out of order, twice): nothing moves.
        seen = []
        while True:
            method, properties, payload = channel.basic_get(tap, auto_ack=True)
            if method is None:
                break
            seen.append((method.routing_key, properties, payload))
        assert any(key.endswith(".completed") for key, _, _ in seen)
        connection.close()
        applied_before = _events_consumed(stack)
        # Replayed by the broker's administrator (a principal may not publish events),
        # without the worker's user_id, which the broker would refuse from another login.
        connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
        channel = connection.channel()
        for key, properties, payload in [*reversed(seen), *seen]:
            properties.user_id = None
            channel.basic_publish(f"{prefix}.events", key, payload, properties)
        connection.close()
        # Every replayed event was really consumed by the tracker before we compare.
        wait_for(
            lambda: _events_consumed(stack) >= applied_before + 2 * len(seen),
            message="the tracker caught up",
        )
        again = user.get(f"/api/data-export/jobs/{job['id']}").json()
        for field in (
            "status",
            "progress",
            "processed_files",
            "failed_files",
            "output_size",
            "completed_at",
            "files",
        ):
            assert again[field] == done[field], field
        assert len(user.get(f"/api/data-export/jobs/{job['id']}/events").json()) == len(events)
        stats = user.get("/api/data-export/statistics").json()
        assert stats["total_jobs"] == 1 and stats["total_files_exported"] == 1
        print(
            f"command delivered twice: one task, one completed event; its {len(seen)} status "
            "events replayed twice, out of order: nothing changed"
        )


def _events_consumed(stack: Stack) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{stack.services['tracker'].port}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("waybill_queue_lag_seconds_count")
    )
