"""Stop the tracker while exports run, start it again: no event is lost (they wait in
their durable queue) and every task ends in the right state."""

from __future__ import annotations

import time

import pytest

from support.stack import Stack, create_export, finished, upload, wait_for


@pytest.mark.slow
def test_tracker_down_under_load(stack: Stack) -> None:
    tracker = stack.services["tracker"]
    with stack.new_user() as user:
        files = [upload(user, f"t{i}.txt", f"file {i}".encode()) for i in range(3)]
        tracker.terminate()
        stopped_at = time.monotonic()
        try:
            jobs = [
                create_export(user, f"t{i}", [files[i % 3]["id"]], "zip").json() for i in range(12)
            ]
            # The worker runs them (it holds leases in the database), but without the
            # tracker no completion is recorded yet.
            time.sleep(3)
            states = {user.get(f"/api/data-export/jobs/{j['id']}").json()["status"] for j in jobs}
            assert "completed" not in states
        finally:
            tracker.start().wait_ready()
        results = [finished(user, j["id"], timeout=90) for j in jobs]
        print(
            f"tracker down {time.monotonic() - stopped_at:.1f} s in all; 12 jobs completed after its return"
        )
        assert all(
            r["status"] == "completed" and r["processed_files"] == 1 and r["progress"] == 100
            for r in results
        )
        for job in jobs:
            events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
            kinds = [e["event_type"] for e in events]
            assert (
                kinds.count("processing") == 1 and kinds.count("completed") == 1 and "item" in kinds
            )
        wait_for(
            lambda: (
                user.get("/api/data-export/statistics").json()["by_status"] == {"completed": 12}
            ),
            message="statistics",
        )
