"""Admins list dead letters with their reasons and replay them; others get 403."""

from __future__ import annotations

import json
import uuid

import pika

from support.stack import AMQP_URL, Stack, finished, upload, wait_for


def test_list_and_replay_dead_letters(stack: Stack) -> None:
    prefix = stack.infra.prefix
    queue = f"{prefix}.export.requests"
    with stack.client() as admin, stack.new_user() as user:
        assert user.get("/api/admin/dead-letters").status_code == 403
        assert user.post("/api/admin/dead-letters/replay", json={}).status_code == 403
        purge = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        purge.channel().queue_purge(f"{queue}.dead")  # start from an empty dead-letter queue
        purge.close()
        assert admin.get("/api/admin/dead-letters", params={"queue": queue}).json() == []
        f = upload(user, "replayed.txt", b"second chance")
        owner = user.get("/api/users/me").json()["id"]
        task_id = str(uuid.uuid4())
        good = {
            "task_id": task_id,
            "owner_id": owner,
            "name": "replayed",
            "file_ids": [f["id"]],
            "export_format": "zip",
        }
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        channel.confirm_delivery()
        # Parked on purpose: published with a wrong content type.
        channel.basic_publish(
            f"{prefix}.commands",
            "export.requested",
            json.dumps(good).encode(),
            pika.BasicProperties(
                content_type="text/plain",
                type="waybill.data_export.requested.v1",
                message_id=task_id,
            ),
        )
        connection.close()
        letters = wait_for(
            lambda: admin.get("/api/admin/dead-letters", params={"queue": queue}).json(),
            message="the parked message listed",
        )
        assert letters[0]["message_id"] == task_id and "content_type" in letters[0]["reason"]
        # Listing does not remove.
        assert (
            admin.get("/api/admin/dead-letters", params={"queue": queue}).json()[0]["message_id"]
            == task_id
        )
        assert admin.get("/api/admin/dead-letters", params={"queue": "nope"}).status_code == 404

        # Replayed as it was, it is refused again (the cause is the message itself) ...
        assert admin.post("/api/admin/dead-letters/replay", json={"queue": queue}).json() == {
            "replayed": 1
        }
        wait_for(
            lambda: admin.get("/api/admin/dead-letters", params={"queue": queue}).json(),
            message="parked again",
        )
        # ... while a parked valid message (its cause fixed elsewhere) completes once replayed.
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        channel.basic_get(f"{queue}.dead", auto_ack=True)
        channel.basic_publish(
            "",
            f"{queue}.dead",
            json.dumps(good).encode(),
            pika.BasicProperties(
                content_type="application/json",
                type="waybill.data_export.requested.v1",
                message_id=task_id,
                headers={"x-waybill-dead-reason": "the worker was down"},
            ),
        )
        connection.close()
        assert admin.post("/api/admin/dead-letters/replay", json={"queue": queue}).json() == {
            "replayed": 1
        }
        job = wait_for(
            lambda: next(
                (j for j in user.get("/api/data-export/jobs").json() if j["task_id"] == task_id),
                None,
            ),
            message="the replayed job",
        )
        assert finished(user, job["id"])["status"] == "completed"
