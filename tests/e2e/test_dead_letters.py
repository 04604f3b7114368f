"""A message that does not match its contract is parked in the dead-letter queue with
the reason, and the worker goes on consuming."""

from __future__ import annotations

import json
import uuid

from support.amqp import publish_command, take_dead_letters
from support.stack import Stack, finished, upload, wait_for


def test_invalid_messages_are_dead_lettered_with_a_reason(stack: Stack) -> None:
    queue = f"{stack.infra.prefix}.export.requests"
    take_dead_letters(stack.infra, queue)
    bad = [
        (
            b'{"task_id": "not-a-uuid", "owner_id": 1}',
            "waybill.data_export.requested.v1",
            "application/json",
        ),
        (b"\xff\xfe not utf-8", "waybill.data_export.requested.v1", "application/json"),
        (b"{truncated", "waybill.data_export.requested.v1", "application/json"),
        (json.dumps({"hello": 1}).encode(), "some.other.type", "application/json"),
        (b"<xml/>", "waybill.data_export.requested.v1", "text/xml"),
    ]
    for body, type_, content_type in bad:
        publish_command(
            stack.infra,
            "export.requested",
            body,
            message_type=type_,
            content_type=content_type,
            principal=stack.publisher,
        )

    dead: list[tuple[bytes, dict[str, object]]] = []
    wait_for(
        lambda: dead.extend(take_dead_letters(stack.infra, queue)) or len(dead) >= len(bad),
        timeout=30,
        message="dead letters",
    )
    assert sorted(body for body, _ in dead) == sorted(body for body, _, _ in bad)
    reasons = {body: str(headers["x-waybill-dead-reason"]) for body, headers in dead}
    assert "task_id" in reasons[bad[0][0]] and "owner_id" not in reasons[bad[0][0]].split(":")[0]
    assert "UTF-8" in reasons[bad[1][0]]
    assert "not JSON" in reasons[bad[2][0]]
    assert "unknown message type" in reasons[bad[3][0]]
    assert "content_type" in reasons[bad[4][0]]

    # The worker keeps serving.
    with stack.new_user() as user:
        f = upload(user, "after.txt", b"still alive")
        response = user.post(
            "/api/data-export/jobs",
            json={"name": "after", "file_ids": [f["id"]], "export_format": "zip"},
        )
        assert response.status_code == 202, response.text
        assert finished(user, response.json()["id"])["status"] == "completed"


def test_direct_publisher_is_authorized_like_http(stack: Stack) -> None:
    """Another system, whose service account may act for any user, publishes straight
    to the queue for a user who may not read the file: the task fails with the reason
    and nothing is exported."""
    with stack.new_user() as owner, stack.new_user() as other:
        f = upload(owner, "private.txt", b"private")
        other_id = other.get("/api/users/me").json()["id"]
        task_id = str(uuid.uuid4())
        message = {
            "task_id": task_id,
            "owner_id": other_id,
            "name": "sneaky",
            "file_ids": [f["id"]],
            "export_format": "zip",
        }
        publish_command(
            stack.infra,
            "export.requested",
            message,
            message_type="waybill.data_export.requested.v1",
            principal=stack.publisher,
        )

        def failed_job() -> dict[str, object] | None:
            jobs = other.get("/api/data-export/jobs").json()
            return jobs[0] if jobs and jobs[0]["status"] == "failed" else None

        job = wait_for(failed_job, message="the direct request to be refused")
        assert job["task_id"] == task_id
        assert f"file {f['id']} not found" in str(job["error_message"])
        assert job["download_url"] is None and job["processed_files"] == 0
