"""Cancel a running export: it stops within 2 s (checked between batches) and leaves
no artifact behind."""

from __future__ import annotations

import time
from datetime import datetime

from support.stack import Stack, create_export, s3_client, upload, wait_for


def test_cancel_during_processing(stack: Stack) -> None:
    with stack.new_user() as user:
        # Excel: real work per cell, so the export is surely still running at the cancel.
        rows = "".join(f"g{i},{i},{i * 0.5}\n" for i in range(100_000)).encode()
        files = [upload(user, f"big{i}.csv", b"gene,n,x\n" + rows) for i in range(4)]
        job = create_export(user, "to cancel", [f["id"] for f in files], "excel").json()
        wait_for(
            lambda: user.get(f"/api/data-export/jobs/{job['id']}").json()["status"] == "processing",
            timeout=60,
            message="processing",
        )
        asked = time.monotonic()
        assert user.post(f"/api/data-export/jobs/{job['id']}/cancel").status_code == 200

        def worker_stopped() -> bool:
            events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
            return any(e["event_type"] == "cancelled" and e["attempt"] > 0 for e in events)

        wait_for(worker_stopped, timeout=10, message="the worker to stop")
        print(f"cancel observed through the API after {time.monotonic() - asked:.2f} s")
        # The event log's timestamps: the user's cancel, and the worker's stop.
        events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
        cancel = next(e for e in events if e["event_type"] == "cancelled" and e["attempt"] == 0)
        stop = next(e for e in events if e["event_type"] == "cancelled" and e["attempt"] > 0)
        latency = (
            datetime.fromisoformat(stop["occurred_at"])
            - datetime.fromisoformat(cancel["occurred_at"])
        ).total_seconds()
        print(f"the worker stopped {latency:.2f} s after the cancel")
        assert latency < 2.0
        final = user.get(f"/api/data-export/jobs/{job['id']}").json()
        assert final["status"] == "cancelled" and final["download_url"] is None
        s3 = s3_client(stack.infra)
        leftovers = list(
            s3.list_objects(
                stack.infra.bucket, prefix=f"exports/{final['task_id']}/", recursive=True
            )
        )
        assert leftovers == []
