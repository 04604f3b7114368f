"""TTL cleanup: on the tracker's schedule and on an admin's POST /cleanup; expiry
removes the artifact and the link is no longer handed out."""

from __future__ import annotations

import httpx

from support.stack import Stack, expire_now, finished, upload, wait_for


def _export(stack: Stack, user: httpx.Client) -> dict[str, object]:
    f = upload(user, "keep.txt", b"short-lived")
    job = user.post(
        "/api/data-export/jobs",
        json={"name": "ttl", "file_ids": [f["id"]], "export_format": "zip", "ttl_hours": 1},
    ).json()
    done = finished(user, job["id"])
    assert done["status"] == "completed" and done["download_url"]
    assert httpx.get(done["download_url"]).status_code == 200
    return done


def test_expiry_on_schedule_and_on_request(stack: Stack) -> None:
    with stack.new_user() as user, stack.client() as admin:
        scheduled = _export(stack, user)
        expire_now(stack.infra, int(scheduled["id"]))  # type: ignore[call-overload]
        expired = wait_for(
            lambda: (
                (j := user.get(f"/api/data-export/jobs/{scheduled['id']}").json())["status"]
                == "expired"
                and j
            ),
            timeout=30,
            message="the tracker's scheduled cleanup",
        )
        assert expired["download_url"] is None
        assert httpx.get(str(scheduled["download_url"])).status_code in (403, 404)

        # The tracker runs every 2 s in tests; race it with an explicit cleanup and
        # accept either one having done the work, but the artifact must be gone.
        on_request = _export(stack, user)
        expire_now(stack.infra, int(on_request["id"]))  # type: ignore[call-overload]
        # Before cleanup runs, the gateway already refuses to sign a link for it.
        assert user.get(f"/api/data-export/jobs/{on_request['id']}").json()["download_url"] is None
        response = admin.post("/api/data-export/cleanup")
        assert response.status_code == 200 and response.json()["count"] >= 0
        wait_for(
            lambda: (
                user.get(f"/api/data-export/jobs/{on_request['id']}").json()["status"] == "expired"
            ),
            message="expired",
        )
        assert httpx.get(str(on_request["download_url"])).status_code in (403, 404)
        stats = user.get("/api/data-export/statistics").json()
        assert stats["by_status"] == {"expired": 2}
