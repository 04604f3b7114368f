"""SIGKILL the export-worker in the middle of an export, start a new one: the task is
re-dispatched when its lease runs out and completes exactly once."""

from __future__ import annotations

import io
import time
import zipfile

import httpx
import pytest

from support.stack import Stack, create_export, finished, upload, wait_for


@pytest.mark.slow
def test_killed_worker_mid_export_completes_once(stack: Stack) -> None:
    worker = stack.services["export-worker"]
    with stack.new_user() as user:
        # Excel: real work per cell, so the export is surely still running at the kill
        # (CSV to Parquet is now too fast to catch mid-way).
        rows = "".join(f"g{i},{i},{i * 0.25},label {i}\n" for i in range(40_000)).encode()
        files = [upload(user, f"part{i}.csv", b"gene,n,x,label\n" + rows) for i in range(6)]
        job = create_export(user, "crash", [f["id"] for f in files], "excel").json()
        wait_for(
            lambda: user.get(f"/api/data-export/jobs/{job['id']}").json()["processed_files"] >= 1,
            timeout=60,
            message="the export to be under way",
        )
        worker.kill()
        killed_at = time.monotonic()
        assert user.get(f"/api/data-export/jobs/{job['id']}").json()["status"] == "processing"
        worker.start().wait_ready()
        done = finished(user, job["id"], timeout=120)
        recovered = time.monotonic() - killed_at
        print(f"killed mid-export; completed {recovered:.1f} s after the kill (lease 6 s)")
        assert (
            done["status"] == "completed"
            and done["processed_files"] == 6
            and done["failed_files"] == 0
        )
        events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
        assert [e["event_type"] for e in events].count("completed") == 1
        assert (
            len({e["attempt"] for e in events if e["attempt"] > 0}) == 2
        )  # two attempts, one result
        with zipfile.ZipFile(io.BytesIO(httpx.get(done["download_url"]).content)) as archive:
            assert sorted(archive.namelist()) == [
                "export_metadata.json",
                *sorted(f"part{i}.xlsx" for i in range(6)),
            ]
        stats = user.get("/api/data-export/statistics").json()
        assert stats["total_jobs"] == 1 and stats["total_files_exported"] == 6
