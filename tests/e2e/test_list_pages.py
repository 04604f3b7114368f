"""Every list endpoint answers a bare JSON array, one page of it, with the total in
`X-Total-Count` and the neighbouring pages in `Link` (rel="next", rel="prev")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import httpx
import pika
import pytest

from support.provenance import Recorder
from support.stack import Stack, finished, wait_for

PROBES = {"/healthz", "/livez", "/readyz", "/metrics"}


@dataclass(frozen=True)
class Listing:
    path: str  # with {placeholders} filled from the world
    admin: bool = False
    query: tuple[tuple[str, str], ...] = ()  # the same
    # A queue peeked is a queue reordered (a quorum queue requeues at the tail): its
    # pages cover the right count, not necessarily the same items in the same order.
    stable: bool = True
    key: Callable[[dict[str, Any]], Any] = lambda item: item["id"]


# Each list endpoint, with a world that puts exactly three items in it.
LISTINGS = {
    "/api/projects": Listing("/api/projects"),
    "/api/files": Listing("/api/files"),
    "/api/histories": Listing("/api/histories"),
    "/api/histories/{history_id}/contents": Listing("/api/histories/{history}/contents"),
    "/api/histories/{history_id}/exports": Listing("/api/histories/{history}/exports"),
    "/api/data-export/jobs": Listing("/api/data-export/jobs"),
    "/api/data-export/jobs/{job_id}/events": Listing(
        "/api/data-export/jobs/{job}/events", key=lambda e: (e["attempt"], e["seq"])
    ),
    "/api/admin/dead-letters": Listing(
        "/api/admin/dead-letters",
        admin=True,
        query=(("queue", "{queue}"),),
        key=lambda d: d["message_id"],
        stable=False,
    ),
    "/api/service-accounts": Listing("/api/service-accounts", admin=True),
    "/api/webhooks": Listing("/api/webhooks"),
    "/api/webhooks/{webhook_id}/deliveries": Listing("/api/webhooks/{webhook}/deliveries"),
    "/api/users/me/keys": Listing("/api/users/me/keys"),
    "/api/users/{user_id}/keys": Listing("/api/users/{user_id}/keys", admin=True),
    # A fixed catalogue (more than three items, whatever the world), paged all the same.
    "/api/data-export/formats": Listing("/api/data-export/formats", key=lambda f: f["name"]),
}


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[dict[str, Any]]:
    with stack.new_user() as user:
        rec = Recorder(user)
        for name in ("one", "two", "three"):
            assert user.post("/api/projects", json={"name": name}).status_code == 201
        history = rec.history("paged")
        rec.history("second")
        rec.history("third")
        files = [rec.file() for _ in range(3)]
        for file_id in files:
            rec.content(history, {"src": "file", "id": file_id})
        for fmt in ("rocrate.zip", "tar.gz"):
            made = user.post(
                f"/api/histories/{history}/prepare_store_download",
                json={"model_store_format": fmt},
            )
            assert made.status_code == 202, made.text
        made = user.post(
            f"/api/histories/{history}/write_store",
            json={
                "model_store_format": "tar.gz",
                "target_uri": f"s3://{stack.infra.bucket}/remote/paged-{uuid.uuid4().hex}.tar.gz",
            },
        )
        assert made.status_code == 202, made.text
        # Three export jobs; the first one's events (processing, item, completed, ...).
        jobs = [
            user.post(
                "/api/data-export/jobs",
                json={"name": f"job {n}", "file_ids": [files[0]], "export_format": "zip"},
            ).json()["id"]
            for n in range(3)
        ]
        assert finished(user, jobs[0])["status"] == "completed"
        queue = f"{stack.infra.prefix}.provenance.events"
        park_three(stack, queue)
        with stack.client() as admin:
            for n in range(3):
                name = f"paged-{n}-{uuid.uuid4().hex[:6]}"
                account = {"name": name, "amqp_user": name, "acts_for": "self"}
                assert admin.post("/api/service-accounts", json=account).status_code == 201
            wait_for(
                lambda: (
                    len(admin.get("/api/admin/dead-letters", params={"queue": queue}).json()) == 3
                ),
                message="three dead letters parked",
            )
        # Three webhooks (nobody listens on port 9), the first with three test deliveries.
        hooks = [
            user.post(
                "/api/webhooks", json={"url": f"http://127.0.0.1:9/{n}", "events": ["failed"]}
            ).json()["id"]
            for n in range(3)
        ]
        for _ in range(3):
            assert user.post(f"/api/webhooks/{hooks[0]}/test").status_code == 202
        # Three keys: the user's first, and two more.
        for name in ("second", "third"):
            assert user.post("/api/users/me/keys", json={"name": name}).status_code == 201
        user_id = user.get("/api/users/me").json()["id"]
        yield {
            "user": user,
            "history": history,
            "job": jobs[0],
            "queue": queue,
            "webhook": hooks[0],
            "user_id": user_id,
        }


def park_three(stack: Stack, queue: str) -> None:
    """Three messages refused by the provenance consumer (wrong content type)."""
    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_purge(f"{queue}.dead")
        channel.confirm_delivery()
        for _ in range(3):
            channel.basic_publish(
                "",
                queue,
                json.dumps({"not": "json?"}).encode(),
                pika.BasicProperties(content_type="text/plain", message_id=str(uuid.uuid4())),
            )
    finally:
        connection.close()


def test_every_list_endpoint_is_covered_and_documents_the_paging(stack: Stack) -> None:
    """Every GET answering an array takes limit and offset and documents both headers
    (and has a row above, so a new list endpoint is checked too)."""
    document = httpx.get(f"{stack.gateway_url}/openapi.json").json()
    lists = set()
    for path, item in document["paths"].items():
        get = item.get("get")
        if path in PROBES or get is None:
            continue
        ok = get["responses"].get("200", {})
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") != "array":
            continue
        lists.add(path)
        assert {"limit", "offset"} <= {p["name"] for p in get.get("parameters", [])}, path
        assert set(ok.get("headers", {})) == {"X-Total-Count", "Link"}, path
    assert lists == set(LISTINGS)


@pytest.mark.parametrize("endpoint", sorted(LISTINGS))
def test_pages_with_total_and_links(endpoint: str, world: dict[str, Any], stack: Stack) -> None:
    listing = LISTINGS[endpoint]
    path = listing.path.format(**world)
    query = {name: value.format(**world) for name, value in listing.query}
    with stack.client() if listing.admin else nullcontext(world["user"]) as client:
        whole = client.get(path, params={**query, "limit": 100})
        assert whole.status_code == 200, whole.text
        everything = [listing.key(i) for i in whole.json()]
        total = len(everything)
        assert total >= 3 and whole.headers["X-Total-Count"] == str(total)
        assert "Link" not in whole.headers

        first = client.get(path, params={**query, "limit": total - 1})
        assert first.status_code == 200, first.text
        page = first.json()
        assert isinstance(page, list) and len(page) == total - 1, page
        assert first.headers["X-Total-Count"] == str(total)
        assert set(first.links) == {"next"}, first.headers.get("Link")
        second = client.get(first.links["next"]["url"])
        assert second.status_code == 200 and second.headers["X-Total-Count"] == str(total)
        assert len(second.json()) == 1 and set(second.links) == {"prev"}
        back = client.get(second.links["prev"]["url"])
        assert back.status_code == 200 and len(back.json()) == total - 1
        if listing.stable:
            assert [listing.key(i) for i in page + second.json()] == everything
            assert [listing.key(i) for i in back.json()] == everything[: total - 1]
        # Past the end: an empty page, still with the total.
        beyond = client.get(path, params={**query, "limit": 2, "offset": total + 5})
        assert beyond.json() == [] and beyond.headers["X-Total-Count"] == str(total)
        assert set(beyond.links) == {"prev"}
