"""A direct publisher is who RabbitMQ says it is, and sees only its own events.

Against the real RabbitMQ, on the session's own vhost (tests/support/broker.py), with
Waybill's services logged in as their own least-privileged users: the broker refuses a
spoofed `user_id` and a binding to another principal's events; the worker refuses a
command whose principal may not act for its owner (dead-lettered with the reason,
nothing read or written, the principal told on its own events); a principal that may
act for a user gets exactly what an HTTP caller gets."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pika
import pika.exceptions
import pytest

from support.amqp import publish_command
from support.broker import Principal
from support.stack import Stack, finished, s3_client, upload, wait_for
from waybill_shared.db.pg import init_json_codecs
from waybill_shared.tasks.repository import register_task

EXPORT = "waybill.data_export.requested.v1"


def export_command(owner: int, file_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "task_id": str(uuid.uuid4()),
        "owner_id": owner,
        "name": "direct",
        "file_ids": [file_id],
        "export_format": "zip",
        **fields,
    }


def publish(stack: Stack, principal: Principal, command: dict[str, Any], **options: Any) -> None:
    """An export command (unless `routing_key` and `message_type` say otherwise), as
    `principal` (support.amqp.publish_command)."""
    options.setdefault("message_type", EXPORT)
    routing_key = options.pop("routing_key", "export.requested")
    publish_command(stack.infra, routing_key, command, principal=principal, **options)


def parked(stack: Stack, queue: str, message_id: str, *, take: bool = True) -> dict[str, Any]:
    """The headers of the dead letter `message_id` in `queue`'s dead-letter queue, taken
    out of it unless `take` is false (the others are handed back)."""
    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    channel = connection.channel()

    def find() -> dict[str, Any] | None:
        seen: list[int] = []
        try:
            while True:
                method, properties, _ = channel.basic_get(f"{queue}.dead")
                if method is None:
                    return None
                if properties.message_id == message_id:
                    if take:
                        channel.basic_ack(method.delivery_tag)
                    else:
                        seen.append(method.delivery_tag)
                    return dict(properties.headers or {})
                seen.append(method.delivery_tag)
        finally:
            for tag in seen:
                channel.basic_nack(tag, requeue=True)

    try:
        found: dict[str, Any] = wait_for(find, timeout=30, message=f"dead letter {message_id}")
        return found
    finally:
        connection.close()


class Tap:
    """A principal's own queue on the events exchange (bound as the README shows)."""

    def __init__(self, stack: Stack, principal: Principal, key: str | None = None) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(principal.url))
        self.channel = self.connection.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(
            self.queue, f"{stack.infra.prefix}.events", key or f"task.{principal.user}.#"
        )

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        got = []
        while True:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return got
            got.append((method.routing_key, json.loads(body)))

    def until(
        self, done: Callable[[list[tuple[str, dict[str, Any]]]], bool], message: str
    ) -> list[tuple[str, dict[str, Any]]]:
        got: list[tuple[str, dict[str, Any]]] = []
        wait_for(lambda: got.extend(self.events()) or done(got), timeout=60, message=message)
        return got

    def close(self) -> None:
        self.connection.close()


def user_id_of(client: httpx.Client) -> int:
    return int(client.get("/api/users/me").json()["id"])


def jobs_of(client: httpx.Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.get("/api/data-export/jobs").json()
    return jobs


def no_artifact(stack: Stack, task_id: str) -> bool:
    objects = s3_client(stack.infra).list_objects(
        stack.infra.bucket, prefix=f"exports/{task_id}/", recursive=True
    )
    return not list(objects)


@pytest.fixture
def owner(stack: Stack) -> Iterator[tuple[httpx.Client, int, dict[str, Any]]]:
    with stack.new_user() as client:
        f = upload(client, "owned.txt", b"the owner's data\n")
        yield client, user_id_of(client), f


# --- the broker -----------------------------------------------------------------------


def test_the_broker_refuses_a_spoofed_user_id(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, f = owner
    _, trusted = stack.service_account("trusted", acts_for="users", user_ids=[owner_id])
    mallory = stack.infra.broker.principal("mallory")
    gateway = stack.infra.broker.services["gateway"].user
    for claimed in (trusted.user, gateway):
        command = export_command(owner_id, f["id"])
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            publish(stack, mallory, command, user_id=claimed)
        assert refused.value.reply_code == 406
        assert f"user_id property set to '{claimed}'" in refused.value.reply_text
    time.sleep(1.0)  # nothing reached a worker
    assert jobs_of(client) == []


def test_binding_to_another_principals_events_is_refused(stack: Stack) -> None:
    alice = stack.infra.broker.principal("alice")
    bob = stack.infra.broker.principal("bob")
    events = f"{stack.infra.prefix}.events"
    gateway = stack.infra.broker.services["gateway"].user
    for key in (
        f"task.{bob.user}.#",
        f"task.{gateway}.data_export.completed",  # the events of HTTP tasks
        "task.#",
        "#",
        "task.*.data_export.#",
        f"task.{alice.user}#",
    ):
        connection = pika.BlockingConnection(pika.URLParameters(alice.url))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_bind(queue, events, key)
        assert refused.value.reply_code == 403, key
        assert "ACCESS_REFUSED" in refused.value.reply_text
        connection.close()
    # Its own it may; and it cannot forge anyone's events.
    tap = Tap(stack, alice)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        tap.channel.confirm_delivery()
        tap.channel.basic_publish(events, f"task.{alice.user}.data_export.completed", b"{}")
    assert refused.value.reply_code == 403
    tap.connection.close()


def test_waybill_services_have_only_the_rights_they_need(stack: Stack) -> None:
    services = stack.infra.broker.services
    prefix = stack.infra.prefix

    def refused(url: str, act: Callable[[Any], Any]) -> int:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
                act(channel)
            return int(closed.value.reply_code)
        finally:
            if connection.is_open:
                connection.close()

    # A worker cannot publish commands (nor act for anyone by them) ...
    assert (
        refused(
            services["export-worker"].url,
            lambda ch: ch.basic_publish(f"{prefix}.commands", "export.requested", b"{}"),
        )
        == 403
    )
    # ... the gateway cannot take a worker's commands or publish events ...
    assert (
        refused(services["gateway"].url, lambda ch: ch.basic_get(f"{prefix}.export.requests"))
        == 403
    )
    assert (
        refused(
            services["gateway"].url,
            lambda ch: ch.basic_publish(f"{prefix}.events", "task.x.y.z", b"{}"),
        )
        == 403
    )
    # ... and no service may create or delete a queue.
    for service in ("gateway", "tracker", "extraction"):
        assert refused(services[service].url, lambda ch: ch.queue_declare(f"{prefix}.mine")) == 403
        assert (
            refused(services[service].url, lambda ch: ch.queue_delete(f"{prefix}.export.requests"))
            == 403
        )


# --- the worker's admission -------------------------------------------------------------


def test_a_principal_acting_for_a_user_it_may_not_is_dead_lettered(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, f = owner
    with stack.new_user() as other:
        _, lims = stack.service_account("lims", acts_for="users", user_ids=[user_id_of(other)])
        tap = Tap(stack, lims)
        command = export_command(owner_id, f["id"])
        publish(stack, lims, command)
        headers = parked(stack, f"{stack.infra.prefix}.export.requests", command["task_id"])
        reason = str(headers["x-waybill-dead-reason"])
        assert reason == f"refused: service account {lims.user!r} may not act for user {owner_id}"
        assert headers["x-waybill-principal"] == lims.user
        # The principal hears of it on its own events ...
        (key, event), *_ = tap.until(lambda got: bool(got), "the refusal event")
        tap.close()
        assert key == f"task.{lims.user}.data_export.failed"
        assert event["task_id"] == command["task_id"] and event["error"] == reason
        # ... and nothing was read or written: no task for anyone, no artifact.
        assert jobs_of(client) == [] and jobs_of(other) == []
        assert client.get(f"/api/tasks/{command['task_id']}/state").status_code == 404
        assert no_artifact(stack, command["task_id"])


def test_no_user_id_or_a_stranger_is_dead_lettered(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, f = owner
    stranger = stack.infra.broker.principal("stranger")  # a RabbitMQ user, no service account
    anonymous = export_command(owner_id, f["id"])
    publish(stack, stranger, anonymous, user_id="")
    foreign = export_command(owner_id, f["id"])
    publish(stack, stranger, foreign)
    queue = f"{stack.infra.prefix}.export.requests"
    assert "has no user_id" in str(
        parked(stack, queue, anonymous["task_id"])["x-waybill-dead-reason"]
    )
    assert f"AMQP user {stranger.user!r} is not a service account" in str(
        parked(stack, queue, foreign["task_id"])["x-waybill-dead-reason"]
    )
    assert jobs_of(client) == []
    assert no_artifact(stack, anonymous["task_id"]) and no_artifact(stack, foreign["task_id"])


def test_a_refused_principals_own_task_fails_and_another_ones_is_untouched(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    """The task exists (registered earlier, say, and its account deleted since): the
    refusal is recorded with it, if it is the refused principal's own. Naming someone
    else's task does not fail it."""
    client, owner_id, f = owner
    gone = stack.infra.broker.principal("gone")
    theirs = export_command(owner_id, f["id"])
    mine = export_command(owner_id, f["id"])
    register(stack, mine, principal=gone.user)
    register(stack, theirs, principal=stack.publisher.user)
    publish(stack, gone, mine)
    publish(stack, gone, theirs)
    queue = f"{stack.infra.prefix}.export.requests"
    parked(stack, queue, mine["task_id"])
    parked(stack, queue, theirs["task_id"])
    by_task = {j["task_id"]: j for j in jobs_of(client)}
    assert by_task[mine["task_id"]]["status"] == "failed"
    assert "not a service account" in by_task[mine["task_id"]]["error_message"]
    assert by_task[theirs["task_id"]]["status"] == "pending"


def test_a_principal_cannot_take_over_a_task_it_did_not_ask_for(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    """Even one that may act for the owner: a task asked for over HTTP (or by another
    principal) is not run with the command another principal sends under its id."""
    client, owner_id, f = owner
    _, anyone = stack.service_account("taker", acts_for="any")
    http_task = export_command(owner_id, f["id"])
    register(stack, http_task, principal=None)
    publish(stack, anyone, {**http_task, "export_format": "zip", "name": "taken"})
    headers = parked(stack, f"{stack.infra.prefix}.export.requests", http_task["task_id"])
    assert f"was not asked for by {anyone.user!r}" in str(headers["x-waybill-dead-reason"])
    (job,) = jobs_of(client)
    assert job["task_id"] == http_task["task_id"] and job["status"] == "pending"
    assert job["name"] == "direct"  # the registered request, not the newcomer's
    assert no_artifact(stack, http_task["task_id"])


def register(stack: Stack, command: dict[str, Any], *, principal: str | None) -> None:
    """A task as a worker registers a direct publisher's, with no command published."""

    async def run() -> None:
        conn = await asyncpg.connect(stack.infra.database_url.replace("+asyncpg", ""))
        try:
            await init_json_codecs(conn)
            await register_task(
                conn,
                task_uuid=command["task_id"],
                kind="data_export",
                owner_id=command["owner_id"],
                request=command,
                total_items=1,
                principal=principal,
            )
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_principal_that_may_act_for_a_user_gets_what_http_gives(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, f = owner
    _, lims = stack.service_account("lims-ok", acts_for="users", user_ids=[owner_id])
    tap = Tap(stack, lims)
    command = export_command(owner_id, f["id"], name="same")
    publish(stack, lims, command)
    over_http = client.post(
        "/api/data-export/jobs",
        json={"name": "same", "file_ids": [f["id"]], "export_format": "zip"},
    )
    assert over_http.status_code == 202, over_http.text
    direct = wait_for(
        lambda: next((j for j in jobs_of(client) if j["task_id"] == command["task_id"]), None),
        message="the direct task",
    )
    a, b = finished(client, direct["id"]), finished(client, over_http.json()["id"])
    assert a["status"] == b["status"] == "completed"
    for field in ("progress", "processed_files", "failed_files", "export_format", "name"):
        assert a[field] == b[field], field
    shape = [{k: v for k, v in item.items() if k != "download_url"} for item in a["files"]]
    assert shape == [{k: v for k, v in item.items() if k != "download_url"} for item in b["files"]]
    packages = [zipfile.ZipFile(io.BytesIO(httpx.get(j["download_url"]).content)) for j in (a, b)]
    assert packages[0].namelist() == packages[1].namelist()
    assert packages[0].read("owned.txt") == packages[1].read("owned.txt") == b"the owner's data\n"
    # Its events came to the principal, under its own routing keys; the HTTP task's did not.
    got = tap.until(
        lambda got: any(e["event"] == "completed" for _, e in got), "the principal's events"
    )
    tap.close()
    assert {e["task_id"] for _, e in got} == {command["task_id"]}
    assert all(key.startswith(f"task.{lims.user}.data_export.") for key, _ in got)


def test_a_self_only_account_acts_for_its_own_user(stack: Stack) -> None:
    account, bot = stack.service_account("bot", acts_for="self")
    with stack.client(account["api_key"]) as itself:
        f = upload(itself, "mine.txt", b"the bot's own\n")
        command = export_command(account["user_id"], f["id"])
        publish(stack, bot, command)
        job = wait_for(
            lambda: next((j for j in jobs_of(itself) if j["task_id"] == command["task_id"]), None),
            message="the bot's task",
        )
        assert finished(itself, job["id"])["status"] == "completed"


def test_a_header_naming_another_principal_counts_only_from_waybill(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    """x-waybill-principal is how the gateway replays for a dead letter's sender: a
    service account that sets it (naming the gateway, which may act for anyone) is
    still itself, and is refused."""
    client, owner_id, f = owner
    _, sly = stack.service_account("sly", acts_for="self")
    gateway = stack.infra.broker.services["gateway"].user
    command = export_command(owner_id, f["id"])
    publish(stack, sly, command, headers={"x-waybill-principal": gateway})
    headers = parked(stack, f"{stack.infra.prefix}.export.requests", command["task_id"])
    assert f"{sly.user!r} may not act for user {owner_id}" in str(headers["x-waybill-dead-reason"])
    assert jobs_of(client) == []


def test_a_replayed_dead_letter_acts_for_its_sender_not_the_gateway(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    """A command with no user_id, parked, replayed by an administrator: the gateway
    publishes the replay, but for nobody, and it is refused again."""
    client, owner_id, f = owner
    queue = f"{stack.infra.prefix}.export.requests"
    command = export_command(owner_id, f["id"])
    publish(stack, stack.infra.broker.principal("stranger"), command, user_id="")
    parked(stack, queue, command["task_id"], take=False)
    with stack.client() as admin:
        assert (
            admin.post("/api/admin/dead-letters/replay", json={"queue": queue}).json()["replayed"]
            >= 1
        )
    again = parked(stack, queue, command["task_id"])
    assert "has no user_id" in str(again["x-waybill-dead-reason"])
    assert jobs_of(client) == [] and no_artifact(stack, command["task_id"])


def test_provenance_from_a_principal_not_allowed_for_the_owner_is_refused(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, _ = owner
    history = client.post("/api/histories", json={"name": "theirs"}).json()["id"]
    _, sly = stack.service_account("sly-provenance", acts_for="self")
    record = {
        "event_id": str(uuid.uuid4()),
        "owner_id": owner_id,
        "job": {"history_id": history, "tool_id": "forged", "inputs": []},
    }
    publish(
        stack,
        sly,
        record,
        routing_key="provenance.recorded",
        message_type="waybill.provenance.recorded.v1",
    )
    headers = parked(stack, f"{stack.infra.prefix}.provenance.events", record["event_id"])
    assert f"{sly.user!r} may not act for user {owner_id}" in str(headers["x-waybill-dead-reason"])
    assert client.get(f"/api/histories/{history}/contents").json() == []


# --- service accounts over HTTP ---------------------------------------------------------


def test_service_accounts_are_kept_by_administrators(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    _, owner_id, _ = owner
    name = f"acct-{uuid.uuid4().hex[:6]}"
    with stack.client() as admin:
        body = {"name": name, "amqp_user": name, "acts_for": "users", "user_ids": [owner_id]}
        created = admin.post("/api/service-accounts", json=body)
        assert created.status_code == 201, created.text
        account = created.json()
        assert account["acts_for"] == "users" and account["user_ids"] == [owner_id]
        assert account["api_key"] and account["user_id"] != owner_id
        permissions = account["amqp_permissions"]
        assert permissions["topic_read"] == r"^task\.{username}\."
        assert permissions["topic_exchange"] == f"{stack.infra.prefix}.events"

        listed = admin.get("/api/service-accounts", params={"limit": 500})
        assert listed.status_code == 200
        assert any(a["id"] == account["id"] and "api_key" not in a for a in listed.json())
        assert int(listed.headers["X-Total-Count"]) >= 1
        got = admin.get(f"/api/service-accounts/{account['id']}").json()
        assert got == {k: v for k, v in account.items() if k != "api_key"}

        for bad, status, fragment in (
            ({**body, "amqp_user": "has.dot"}, 422, "amqp_user"),
            ({**body, "user_ids": []}, 422, "needs user_ids"),
            ({**body, "acts_for": "self"}, 422, "only with acts_for 'users'"),
            ({**body, "acts_for": "all"}, 422, "acts_for"),
            ({**body, "name": name + "-2"}, 409, "already has a service account"),
            (
                {**body, "name": name + "-3", "amqp_user": name + "-3", "user_ids": [2**31 - 1]},
                404,
                f"user {2**31 - 1} not found",
            ),
            (
                {
                    **body,
                    "name": name + "-4",
                    "amqp_user": stack.infra.broker.services["tracker"].user,
                },
                409,
                "belongs to a Waybill service",
            ),
        ):
            answer = admin.post("/api/service-accounts", json=bad)
            assert answer.status_code == status, (bad, answer.text)
            assert fragment in json.dumps(answer.json()["detail"]), (fragment, answer.text)

        # Deleted: its key stops working, and its commands are refused.
        with stack.client(account["api_key"]) as itself:
            assert itself.get("/api/users/me").status_code == 200
            assert admin.delete(f"/api/service-accounts/{account['id']}").status_code == 204
            wait_for(lambda: itself.get("/api/users/me").status_code == 401, message="key revoked")
        assert admin.get(f"/api/service-accounts/{account['id']}").status_code == 404
        assert admin.delete(f"/api/service-accounts/{account['id']}").status_code == 404


def test_a_deleted_account_is_refused_within_the_cache_time(
    stack: Stack, owner: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, owner_id, f = owner
    account, former = stack.service_account("former", acts_for="any")
    before = export_command(owner_id, f["id"])
    publish(stack, former, before)
    job = wait_for(
        lambda: next((j for j in jobs_of(client) if j["task_id"] == before["task_id"]), None),
        message="the task before the deletion",
    )
    assert finished(client, job["id"])["status"] == "completed"
    with stack.client() as admin:
        assert admin.delete(f"/api/service-accounts/{account['id']}").status_code == 204
    time.sleep(1.5)  # the workers' cache of service accounts (1 s in the tests)
    after = export_command(owner_id, f["id"])
    publish(stack, former, after)
    headers = parked(stack, f"{stack.infra.prefix}.export.requests", after["task_id"])
    assert "is not a service account" in str(headers["x-waybill-dead-reason"])
    assert [j["task_id"] for j in jobs_of(client)] == [before["task_id"]]
