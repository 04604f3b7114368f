"""Admins list dead letters with their reasons and replay them; others get 403. A
replay acts for the principal that sent the message, never as the gateway."""

from __future__ import annotations

import time
import uuid

from support.amqp import publish_command, take_dead_letters
from support.broker import Principal
from support.stack import Stack, finished, upload, wait_for

EXPORT = "waybill.data_export.requested.v1"


def test_list_and_replay_dead_letters(stack: Stack) -> None:
    prefix = stack.infra.prefix
    queue = f"{prefix}.export.requests"
    with stack.client() as admin, stack.new_user() as user:
        assert user.get("/api/admin/dead-letters").status_code == 403
        assert user.post("/api/admin/dead-letters/replay", json={}).status_code == 403
        take_dead_letters(stack.infra, queue)  # start from an empty dead-letter queue
        assert admin.get("/api/admin/dead-letters", params={"queue": queue}).json() == []
        f = upload(user, "replayed.txt", b"second chance")
        owner = user.get("/api/users/me").json()["id"]

        def export(task_id: str) -> dict[str, object]:
            return {
                "task_id": task_id,
                "owner_id": owner,
                "name": "replayed",
                "file_ids": [f["id"]],
                "export_format": "zip",
            }

        def publish(principal: Principal, command: dict[str, object], **options: str) -> None:
            publish_command(
                stack.infra,
                "export.requested",
                command,
                message_type=EXPORT,
                principal=principal,
                **options,
            )

        # Parked on purpose: published with a wrong content type.
        wrong = str(uuid.uuid4())
        publish(stack.publisher, export(wrong), content_type="text/plain")
        letters = wait_for(
            lambda: admin.get("/api/admin/dead-letters", params={"queue": queue}).json(),
            message="the parked message listed",
        )
        assert letters[0]["message_id"] == wrong and "content_type" in letters[0]["reason"]
        assert letters[0]["principal"] == stack.publisher.user
        # Listing does not remove.
        assert (
            admin.get("/api/admin/dead-letters", params={"queue": queue}).json()[0]["message_id"]
            == wrong
        )
        assert admin.get("/api/admin/dead-letters", params={"queue": "nope"}).status_code == 404

        # Replayed as it was, it is refused again (the cause is the message itself) ...
        assert admin.post("/api/admin/dead-letters/replay", json={"queue": queue}).json() == {
            "replayed": 1
        }
        again = wait_for(
            lambda: admin.get("/api/admin/dead-letters", params={"queue": queue}).json(),
            message="parked again",
        )
        assert again[0]["principal"] == stack.publisher.user  # still its sender's
        take_dead_letters(stack.infra, queue)

        # ... while a valid message whose cause was fixed since completes once replayed,
        # as the principal that sent it: a system published before its service account
        # existed, then an administrator made the account.
        latecomer = stack.infra.broker.principal("latecomer")
        task_id = str(uuid.uuid4())
        publish(latecomer, export(task_id))
        letters = wait_for(
            lambda: admin.get("/api/admin/dead-letters", params={"queue": queue}).json(),
            message="the latecomer's command parked",
        )
        assert "not a service account" in letters[0]["reason"], letters
        stack.service_account("latecomer", acts_for="users", user_ids=[owner])
        time.sleep(1.5)  # the workers' cache of service accounts (1 s in the tests)
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
