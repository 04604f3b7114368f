"""Webhooks against the running services and a real receiver on loopback (aiohttp, in
this process): signed deliveries, retries, a restart that loses nothing, disabling,
ownership and URL refusals. The stack's settings make the backoff short (a second or
so) and disable a subscription after 12 failed attempts in a row."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from support.stack import Stack, create_export, expire_now, finished, free_port, upload, wait_for
from waybill_shared.webhooks.payload import PingData, TaskEventData, WebhookMessage


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        """The body, once its signature checked out with `secret` (raises if not)."""
        payload: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return payload


@dataclass
class Receiver:
    """An HTTP receiver on loopback that answers `failures` first (one status per
    request), then 200. Stop and start it again: same port."""

    failures: list[int] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.failures.pop(0) if self.failures else 200
        return web.Response(status=status, text="nope" if status >= 300 else "ok")

    def start(self) -> Receiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/hooks", self._handle)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def of_event(self, kind: str) -> list[Received]:
        return [r for r in self.received if orjson.loads(r.body)["type"] == kind]


def subscribe(client: httpx.Client, url: str, events: list[str]) -> dict[str, Any]:
    response = client.post("/api/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(client: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    assert int(response.headers["X-Total-Count"]) == len(response.json())
    found: list[dict[str, Any]] = response.json()
    return found


def export(stack: Stack, client: httpx.Client, name: str) -> dict[str, Any]:
    file = upload(client, f"{name}.csv", b"gene,count\nBRCA1,7\n")
    response = create_export(client, name, [file["id"]], "zip")
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


@pytest.fixture
def receiver() -> Any:
    receiving = Receiver().start()
    yield receiving
    if receiving._thread.is_alive():
        receiving.stop()


def test_signed_delivery_retried_until_the_receiver_takes_it(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.failures = [500, 500]
    with stack.new_user() as user:
        hook = subscribe(user, receiver.url, ["completed"])
        assert hook["secret"].startswith("whsec_") and hook["enabled"] is True
        assert "secret" not in user.get(f"/api/webhooks/{hook['id']}").json()
        unheard = subscribe(user, receiver.url, ["failed"])  # hears nothing here

        job = finished(user, export(stack, user, "hooked")["id"])
        assert job["status"] == "completed"
        [delivery] = wait_for(
            lambda: [d for d in deliveries(user, hook["id"]) if d["status"] == "delivered"],
            timeout=30,
            message="the delivery",
        )
        assert delivery["attempts"] == 3 and delivery["response_code"] == 200
        assert delivery["event"] == "completed" and delivery["task_id"] == job["task_id"]
        assert delivery["last_error"] is None and delivery["next_attempt_at"] is None

        # Three requests, one message: the same webhook-id, each signed.
        assert len(receiver.received) == 3
        assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["message_id"]}
        bodies = [r.verified(hook["secret"]) for r in receiver.received]
        body = bodies[-1]
        assert isinstance(WebhookMessage.model_validate(body).data, TaskEventData)  # as documented
        assert body["type"] == "task.completed"
        assert body["data"]["event"]["type"] == "completed"
        task = body["data"]["task"]
        assert (task["task_id"], task["id"], task["status"]) == (
            job["task_id"],
            job["id"],
            "completed",
        )
        # The link was signed for this delivery, and it downloads the package.
        package = httpx.get(task["download_url"], timeout=30)
        assert package.status_code == 200
        assert zipfile.ZipFile(io.BytesIO(package.content)).namelist()

        assert deliveries(user, unheard["id"]) == []
        tracker_metrics = httpx.get(
            f"http://127.0.0.1:{stack.services['tracker'].port}/metrics", timeout=10
        ).text
        assert 'waybill_webhook_attempts_total{outcome="retry"}' in tracker_metrics
        assert 'waybill_webhook_attempts_total{outcome="delivered"}' in tracker_metrics
        assert user.get(f"/api/webhooks/{hook['id']}").json()["consecutive_failures"] == 0


def test_nothing_is_lost_while_the_receiver_is_down_and_the_tracker_restarts(
    stack: Stack, receiver: Receiver
) -> None:
    tracker = stack.services["tracker"]
    with stack.new_user() as user:
        hook = subscribe(user, receiver.url, ["completed"])
        receiver.stop()
        first = export(stack, user, "before the restart")
        pending = wait_for(
            lambda: [d for d in deliveries(user, hook["id"]) if d["last_error"]],
            timeout=30,
            message="a failed attempt while the receiver is down",
        )
        assert pending[0]["status"] == "pending" and "Connect" in pending[0]["last_error"]
        tracker.kill()  # mid-retry, no goodbye
        try:
            second = export(stack, user, "while the tracker is down")
            time.sleep(1)
        finally:
            tracker.start().wait_ready()
        receiver.start()
        done = wait_for(
            lambda: (
                (found := deliveries(user, hook["id"]))
                and len(found) == 2
                and all(d["status"] == "delivered" for d in found)
                and found
            ),
            timeout=60,
            message="both deliveries",
        )
        assert {d["task_id"] for d in done} == {first["task_id"], second["task_id"]}
        heard = {r.verified(hook["secret"])["data"]["task"]["task_id"] for r in receiver.received}
        assert heard == {first["task_id"], second["task_id"]}


def test_expiry_is_delivered(stack: Stack, receiver: Receiver) -> None:
    """An event the tracker decides itself (not a worker's) is delivered too."""
    with stack.new_user() as user:
        hook = subscribe(user, receiver.url, ["expired"])
        job = finished(user, export(stack, user, "to expire")["id"])
        expire_now(stack.infra, job["id"])
        wait_for(
            lambda: any(d["status"] == "delivered" for d in deliveries(user, hook["id"])),
            timeout=30,
            message="the expiry's delivery",
        )
        body = receiver.of_event("task.expired")[0].verified(hook["secret"])
        assert body["data"]["task"]["status"] == "expired"
        assert body["data"]["task"]["download_url"] is None


def test_disabled_after_failures_in_a_row_and_enabled_again(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.failures = [503] * 1000
    with stack.new_user() as user:
        hook = subscribe(user, receiver.url, ["all"])
        for _ in range(3):
            test = user.post(f"/api/webhooks/{hook['id']}/test")
            assert test.status_code == 202, test.text
            assert test.json()["event"] == "test" and test.json()["status"] == "pending"
        disabled = wait_for(
            lambda: (h := user.get(f"/api/webhooks/{hook['id']}").json())["enabled"] is False and h,
            timeout=60,
            message="the subscription disabled",
        )
        assert "12 delivery attempts in a row failed" in disabled["disabled_reason"]
        assert "HTTP 503" in disabled["disabled_reason"]
        assert disabled["disabled_at"] is not None and disabled["consecutive_failures"] == 12
        # Nothing more is tried while it is disabled.
        tried = len(receiver.received)
        time.sleep(1.5)
        assert len(receiver.received) == tried
        log = deliveries(user, hook["id"])
        assert len(log) == 3 and all(d["status"] == "pending" for d in log)
        assert all(d["response_code"] == 503 and "HTTP 503" in d["last_error"] for d in log)

        receiver.failures = []
        enabled = user.patch(f"/api/webhooks/{hook['id']}", json={"enabled": True})
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["disabled_reason"] is None
        assert enabled.json()["consecutive_failures"] == 0
        wait_for(
            lambda: all(d["status"] == "delivered" for d in deliveries(user, hook["id"])),
            timeout=30,
            message="the pending deliveries once enabled again",
        )
        ping = WebhookMessage.model_validate(receiver.received[-1].verified(hook["secret"]))
        assert ping.type == "webhook.test" and isinstance(ping.data, PingData)
        assert ping.data.webhook_id == hook["id"]


def test_a_subscription_is_its_owners(stack: Stack) -> None:
    with stack.new_user() as owner, stack.new_user() as other, stack.client() as admin:
        hook = subscribe(owner, "http://127.0.0.1:9/hooks", ["completed", "failed"])
        path = f"/api/webhooks/{hook['id']}"
        ghost = f"/api/webhooks/{2**31 - 1}"
        for method, suffix, body in (
            ("GET", "", None),
            ("PATCH", "", {"enabled": False}),
            ("POST", "/test", None),
            ("GET", "/deliveries", None),
            ("DELETE", "", None),
        ):
            theirs = other.request(method, path + suffix, json=body)
            nobodys = other.request(method, ghost + suffix, json=body)
            assert theirs.status_code == nobodys.status_code == 404, (method, suffix)
            assert theirs.json() == {"detail": f"webhook {hook['id']} not found"}
        assert hook["id"] not in {h["id"] for h in other.get("/api/webhooks").json()}
        mine = owner.get("/api/webhooks")
        assert [h["id"] for h in mine.json()] == [hook["id"]]
        assert mine.headers["X-Total-Count"] == "1"
        assert admin.get(path).status_code == 200  # administrators see everyone's
        changed = owner.patch(path, json={"events": ["all"], "enabled": False})
        assert changed.status_code == 200 and changed.json()["events"] == ["all"]
        assert owner.delete(path).status_code == 204
        assert owner.get(path).status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "ftp://example.org/hook"}, "only http and https"),
        ({"url": "http://10.1.2.3/hook"}, "10.1.2.3 is refused: a private address"),
        ({"url": "http://169.254.169.254/latest"}, "a link-local address"),
        ({"url": "http://[::ffff:192.168.0.1]/"}, "a private address"),
        ({"url": "http://0.0.0.0:8080/"}, "an unspecified address"),
        ({"url": "https://no-such-host.invalid/hook"}, "does not resolve"),
        ({"url": "https://me:pw@example.org/hook"}, "user or password"),
        ({"events": ["done"]}, "events"),
        ({"events": []}, "events"),
        ({"secret": "not-a-secret"}, "secret"),
        ({"secret": "whsec_c2hvcnQ="}, "24 to 64 bytes"),
    ],
)
def test_refusals_are_422_with_the_reason(stack: Stack, body: dict[str, Any], says: str) -> None:
    with stack.new_user() as user:
        response = user.post(
            "/api/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["all"], **body}
        )
        assert response.status_code == 422, response.text
        assert says in response.text
        hook = subscribe(user, "http://127.0.0.1:9/hooks", ["all"])
        patched = user.patch(f"/api/webhooks/{hook['id']}", json=body)
        assert patched.status_code == 422 and says in patched.text
