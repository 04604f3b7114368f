"""Quotas per user, set by an administrator: stored bytes (uploads plus artifacts),
running exports, files per export. Over a quota is a clear 4xx that names the quota
and by how much; `GET /api/users/me/usage` shows the use; deleting or expiring a
file or an export gives its space back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from support.stack import Stack, create_export, expire_now, finished, upload, wait_for
from waybill_shared.db.pg import init_json_codecs
from waybill_shared.tasks.repository import register_task


def user_id(client: httpx.Client) -> int:
    return int(client.get("/api/users/me").json()["id"])


def set_quotas(stack: Stack, client: httpx.Client, **quotas: int | None) -> dict[str, Any]:
    with stack.client() as admin:
        answer = admin.put(f"/api/users/{user_id(client)}/quotas", json=quotas)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def usage(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/api/users/me/usage")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def stored(client: httpx.Client) -> int:
    return int(usage(client)["stored_bytes"]["used"])


def test_stored_bytes_quota_and_space_given_back(stack: Stack) -> None:
    with stack.new_user() as user:
        assert usage(user) == {
            "stored_bytes": {"used": 0, "limit": 100 * 1024**3},
            "running_exports": {"used": 0, "limit": 1000},
            "files_per_export": 1000,
        }
        assert set_quotas(stack, user, stored_bytes=1000)["stored_bytes"] == {
            "used": 0,
            "limit": 1000,
        }
        first = upload(user, "a.csv", b"x" * 600)
        assert stored(user) == 600

        over = user.post("/api/files", files={"file": ("b.csv", b"y" * 500)})
        assert over.status_code == 413, over.text
        body = over.json()
        assert (body["quota"], body["limit"], body["would_use"], body["over_by"]) == (
            "stored_bytes",
            1000,
            1100,
            100,
        )
        assert "100 bytes over" in body["detail"] and "upload of 500 bytes" in body["detail"]
        assert user.get("/api/files").headers["X-Total-Count"] == "1", "nothing was stored"

        assert user.delete(f"/api/files/{first['id']}").status_code == 204
        assert stored(user) == 0, "deleting a file gives its space back"
        kept = upload(user, "b.csv", b"a,b\n" + b"1,2\n" * 100)
        assert stored(user) == kept["size"]

        # An export's artifact counts once it completed; expiry gives it back.
        job = create_export(user, "q", [kept["id"]], "zip")
        assert job.status_code == 202, job.text
        done = finished(user, job.json()["id"])
        assert done["status"] == "completed" and done["output_size"] > 0
        assert stored(user) == kept["size"] + done["output_size"]
        expire_now(stack.infra, done["id"])
        with stack.client() as admin:
            assert admin.post("/api/data-export/cleanup").status_code == 200
        assert user.get(f"/api/data-export/jobs/{done['id']}").json()["status"] == "expired"
        assert stored(user) == kept["size"], "expiry gives the artifact's space back"

        # Deleting a completed export gives it back too.
        job = create_export(user, "q", [kept["id"]], "zip")
        done = finished(user, job.json()["id"])
        assert stored(user) == kept["size"] + done["output_size"]
        assert user.delete(f"/api/data-export/jobs/{done['id']}").status_code == 204
        assert stored(user) == kept["size"]

        # Used up: no new export, no upload, however small.
        set_quotas(stack, user, stored_bytes=kept["size"])
        refused = create_export(user, "q", [kept["id"]], "zip")
        assert refused.status_code == 413, refused.text
        assert refused.json()["quota"] == "stored_bytes"
        assert "used up" in refused.json()["detail"]
        tiny = user.post("/api/files", files={"file": ("c.csv", b"z")})
        assert tiny.status_code == 413 and tiny.json()["over_by"] == 1

        set_quotas(stack, user)  # back to the defaults
        assert usage(user)["stored_bytes"]["limit"] == 100 * 1024**3
        assert create_export(user, "q", [kept["id"]], "zip").status_code == 202


def test_files_per_export_quota(stack: Stack) -> None:
    with stack.new_user() as user:
        files = [upload(user, f"f{i}.txt", b"f")["id"] for i in range(3)]
        assert set_quotas(stack, user, files_per_export=2)["files_per_export"] == 2
        over = create_export(user, "q", files, "zip")
        assert over.status_code == 422, over.text
        assert over.json()["quota"] == "files_per_export" and over.json()["over_by"] == 1
        assert "3 files requested; at most 2 per export" in over.json()["detail"]
        assert create_export(user, "q", files[:2], "zip").status_code == 202


def queued_export(stack: Stack, owner_id: int, file_id: int) -> int:
    """An export registered as the gateway registers one, with no command published:
    it stays pending (a worker never hears of it) until it is cancelled."""

    async def register() -> int:
        conn = await asyncpg.connect(stack.infra.database_url.replace("+asyncpg", ""))
        try:
            await init_json_codecs(conn)
            registered = await register_task(
                conn,
                task_uuid=uuid.uuid4(),
                kind="data_export",
                owner_id=owner_id,
                request={"name": "queued", "export_format": "zip", "file_ids": [file_id]},
                total_items=1,
            )
            return registered.task.id
        finally:
            await conn.close()

    return asyncio.run(register())


def test_running_exports_quota(stack: Stack) -> None:
    with stack.new_user() as user:
        file_id = upload(user, "r.txt", b"r")["id"]
        queued = [queued_export(stack, user_id(user), file_id) for _ in range(2)]
        assert set_quotas(stack, user, running_exports=2)["running_exports"] == {
            "used": 2,
            "limit": 2,
        }
        over = create_export(user, "q", [file_id], "zip")
        assert over.status_code == 429, over.text
        assert over.headers["Retry-After"] == "5"
        body = over.json()
        assert (body["quota"], body["limit"], body["would_use"], body["over_by"]) == (
            "running_exports",
            2,
            3,
            1,
        )
        assert "2 exports are pending or running, at most 2" in body["detail"]

        assert user.post(f"/api/data-export/jobs/{queued[0]}/cancel").status_code == 200
        assert usage(user)["running_exports"]["used"] == 1
        accepted = create_export(user, "q", [file_id], "zip")
        assert accepted.status_code == 202, accepted.text
        wait_for(
            lambda: finished(user, accepted.json()["id"])["status"] == "completed",
            message="the accepted export",
        )
