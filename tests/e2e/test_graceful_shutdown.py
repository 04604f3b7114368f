"""SIGTERM in every service: stop consuming, finish or hand back in-flight work, close
connections, exit 0. The processes are the test's own, signalled by pid."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx
import pytest

from support.stack import ServiceProcess, Stack, create_export, finished, upload, wait_for


def _start_export(user: httpx.Client, *, files: int, rows: int, fmt: str) -> dict[str, Any]:
    body = "".join(f"g{i},{i},{i * 0.5}\n" for i in range(rows)).encode()
    ids = [upload(user, f"s{i}.csv", b"gene,n,x\n" + body)["id"] for i in range(files)]
    job: dict[str, Any] = create_export(user, "shutdown", ids, fmt).json()
    wait_for(
        lambda: user.get(f"/api/data-export/jobs/{job['id']}").json()["status"] == "processing",
        timeout=60,
        message="the export to be processing",
    )
    return job


def _event_attempts(user: httpx.Client, job_id: int, event: str) -> list[int]:
    events = user.get(f"/api/data-export/jobs/{job_id}/events").json()
    return [e["attempt"] for e in events if e["event_type"] == event and e["attempt"] > 0]


def _terminate(service: ServiceProcess) -> tuple[int, float, str]:
    """SIGTERM and wait: the exit code, the seconds it took, what it logged meanwhile."""
    logged_before = service.log_path.stat().st_size
    asked = time.monotonic()
    code = service.terminate(timeout=60)
    took = time.monotonic() - asked
    with service.log_path.open() as log:
        log.seek(logged_before)
        return code, took, log.read()


@pytest.mark.slow
def test_sigterm_lets_the_worker_finish_its_export(stack: Stack) -> None:
    worker = stack.services["export-worker"]
    with stack.new_user() as user:
        job = _start_export(user, files=4, rows=60_000, fmt="parquet")
        try:
            code, took, log = _terminate(worker)
        finally:
            worker.start().wait_ready()
        done = finished(user, job["id"], timeout=60)
        print(f"export-worker drained its export and exited {code} in {took:.2f} s")
        assert code == 0
        assert done["status"] == "completed" and done["processed_files"] == 4
        # Finished by the attempt that was running: drained, not handed back.
        assert _event_attempts(user, job["id"], "processing") == [1]
        assert _event_attempts(user, job["id"], "completed") == [1]
        assert "stopping: draining in-flight work" in log and '"event": "stopped"' in log


@pytest.mark.slow
def test_sigterm_past_the_grace_period_hands_the_export_back(stack: Stack) -> None:
    """Work longer than the grace period is handed back at once (its lease ends now),
    so the next worker takes it without waiting for the lease to run out."""
    regular = stack.services["export-worker"]
    regular.terminate()
    impatient = stack.infra.service("export-worker", WAYBILL_SHUTDOWN_GRACE_SECONDS="0.5")
    impatient.start().wait_ready()
    try:
        with stack.new_user() as user:
            # Excel: seconds of real work per file, far past the 0.5 s grace.
            job = _start_export(user, files=4, rows=100_000, fmt="excel")
            code, took, _ = _terminate(impatient)
            regular.start().wait_ready()
            handed_back_at = time.monotonic()
            done = finished(user, job["id"], timeout=120)
            print(
                f"export-worker exited {code} {took:.2f} s after SIGTERM (grace 0.5 s); "
                f"the next worker finished the export {time.monotonic() - handed_back_at:.1f} s later"
            )
            assert code == 0 and took < 10
            assert done["status"] == "completed" and done["processed_files"] == 4
            assert _event_attempts(user, job["id"], "processing") == [1, 2]
            assert _event_attempts(user, job["id"], "completed") == [2]
    finally:
        impatient.kill()
        if not regular.ready():
            regular.start().wait_ready()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gateway", "extraction", "tracker"])
def test_sigterm_stops_each_service_cleanly(stack: Stack, name: str) -> None:
    service = stack.services[name]
    try:
        code, took, log = _terminate(service)
    finally:
        service.start().wait_ready()
    print(f"{name} exited {code} {took:.2f} s after SIGTERM")
    # uvicorn ends a graceful shutdown by re-raising the signal it caught, so the
    # gateway's status is "terminated by SIGTERM"; the log shows the drain finished.
    assert code in ((0, -signal.SIGTERM) if name == "gateway" else (0,)) and took < 15
    assert '"event": "stopped"' in log
    # The restarted service works: an export is accepted, run and recorded.
    with stack.new_user() as user:
        f = upload(user, "after.txt", b"after restart")
        job = create_export(user, "after", [f["id"]], "zip").json()
        assert finished(user, job["id"])["status"] == "completed"
