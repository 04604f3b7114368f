"""A burst of 200 exports with two worker processes, a random one of them killed
(SIGKILL) at fixed points of progress: all 200 complete, each exactly once."""

from __future__ import annotations

import random
import time

import pytest

from support.stack import Stack, create_export, upload, wait_for


@pytest.mark.slow
def test_burst_of_200_with_random_kills(stack: Stack) -> None:
    rng = random.Random(7)
    second = stack.infra.service("export-worker").start()
    second.wait_ready()
    workers = [stack.services["export-worker"], second]
    kills = 0
    try:
        with stack.new_user() as user:
            rows = b"a,b\n" + b"".join(f"{i},{i * 2}\n".encode() for i in range(40_000))
            files = [upload(user, f"b{i}.csv", rows) for i in range(4)]
            started = time.monotonic()
            jobs = [
                create_export(user, f"burst {i}", [files[i % 4]["id"]], "parquet").json()
                for i in range(200)
            ]

            def done() -> int:
                return int(
                    user.get("/api/data-export/statistics").json()["by_status"].get("completed", 0)
                )

            # Kills keyed to progress, not to the clock: a fast machine still sees them all.
            kill_points = [20, 60, 100, 140]
            while kill_points and time.monotonic() - started < 240:
                if done() >= kill_points[0]:
                    kill_points.pop(0)
                    victim = rng.choice(workers)
                    victim.kill()
                    kills += 1
                    victim.start().wait_ready()
                time.sleep(0.2)
            wait_for(lambda: done() == 200, timeout=120, message="all 200 completed")
            elapsed = time.monotonic() - started
            print(f"200 exports, {kills} kills, all completed in {elapsed:.1f} s")
            stats = user.get("/api/data-export/statistics").json()
            assert stats["by_status"] == {"completed": 200} and stats["total_files_exported"] == 200
            for job in jobs[::10]:  # a sample: one completed event each
                events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
                assert [e["event_type"] for e in events].count("completed") == 1
            assert kills == 4
    finally:
        second.kill()
