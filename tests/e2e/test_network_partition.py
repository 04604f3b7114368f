"""Break the network between an export-worker and RabbitMQ in the middle of an
export, through a TCP proxy the test controls (tests/support/tcp_proxy.py):

- the connection is dropped (reset): the worker notices at once, hands its task
  back, reconnects, and the export is redone and completes once;
- the connection is black-holed (silence both ways, nothing reset): the worker's
  heartbeats (1 s here) notice within their timeout, the worker hands the task back,
  the lease moves to another worker, and the export completes once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from support.stack import (
    Infra,
    ServiceProcess,
    Stack,
    finished,
    start_infra,
    start_stack,
    stop_infra,
    upload,
    wait_for,
)
from support.tcp_proxy import TcpProxy

HEARTBEAT = 1
# aiormq declares a connection dead after three heartbeat timeouts of silence,
# 3 x (heartbeat + 1) s, checked every second; then the worker hands its task back.
NOTICED_WITHIN = 3 * (HEARTBEAT + 1) + 3  # and slack for a loaded machine


@pytest.fixture
def proxied_worker_stack(tmp_path: Path) -> Iterator[tuple[TcpProxy, Stack]]:
    infra = start_infra(tmp_path)
    amqp_url = infra.broker.service_env("export-worker")["WAYBILL_AMQP_URL"]
    proxy = TcpProxy(int(amqp_url.rsplit(":", 1)[1].split("/")[0])).start()
    try:
        stack = start_stack(infra, ("gateway", "tracker"))
        try:
            worker = infra.service(
                "export-worker",
                WAYBILL_AMQP_URL=proxy.url_for(amqp_url),
                WAYBILL_AMQP_HEARTBEAT_SECONDS=str(HEARTBEAT),
            ).start()
            stack.services["export-worker"] = worker
            worker.wait_ready()
            yield proxy, stack
        finally:
            stack.stop()
    finally:
        proxy.close()
        stop_infra(infra)


def lease_of(infra: Infra, job_id: int) -> tuple[str, int]:
    """The worker holding a task's lease (hostname:pid), and its attempt."""

    async def read() -> tuple[str, int]:
        conn = await asyncpg.connect(infra.database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            row = await conn.fetchrow(
                "SELECT lease_owner, attempt FROM tasks WHERE id = $1", job_id
            )
        finally:
            await conn.close()
        assert row is not None
        return row["lease_owner"] or "", int(row["attempt"])

    return asyncio.run(read())


def start_export(user: httpx.Client, file_ids: list[int], name: str) -> dict[str, Any]:
    """An Excel export (real work per cell, so it is surely still running when the
    network breaks), under way on the proxied worker when this returns."""
    response = user.post(
        "/api/data-export/jobs",
        json={"name": name, "file_ids": file_ids, "export_format": "excel"},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    wait_for(
        lambda: user.get(f"/api/data-export/jobs/{job['id']}").json()["processed_files"] >= 1,
        timeout=60,
        message=f"{name} under way",
    )
    return job


def completed_once(user: httpx.Client, job_id: int) -> dict[str, Any]:
    done = finished(user, job_id, timeout=120)
    assert done["status"] == "completed" and done["processed_files"] == 6, done
    assert done["failed_files"] == 0, done
    events = user.get(f"/api/data-export/jobs/{job_id}/events").json()
    completed = [e for e in events if e["event_type"] == "completed"]
    assert len(completed) == 1, events
    attempts = {e["attempt"] for e in events if e["attempt"] > 0}
    assert attempts == {1, 2} and completed[0]["attempt"] == 2, events  # redone, once
    download = httpx.get(done["download_url"], timeout=30)
    assert download.status_code == 200 and download.content[:4] == b"PK\x03\x04"
    return done


@pytest.mark.slow
def test_worker_cut_off_from_the_broker_mid_export(
    proxied_worker_stack: tuple[TcpProxy, Stack],
) -> None:
    proxy, stack = proxied_worker_stack
    worker_a = stack.services["export-worker"]
    with stack.new_user() as user:
        rows = "".join(f"g{i},{i},{i * 0.25},label {i}\n" for i in range(12_000)).encode()
        file_ids = [
            upload(user, f"part{i}.csv", b"gene,n,x,label\n" + rows)["id"] for i in range(6)
        ]

        # 1. The connection is reset mid-export.
        first = start_export(user, file_ids, "dropped")
        assert lease_of(stack.infra, first["id"])[0].endswith(f":{worker_a.pid}")
        proxy.drop()
        dropped_at = time.monotonic()
        completed_once(user, first["id"])
        drop_recovered = time.monotonic() - dropped_at
        owner, attempt = lease_of(stack.infra, first["id"])
        assert owner.endswith(f":{worker_a.pid}") and attempt == 2  # A, once reconnected

        # 2. The connection goes silent mid-export; another worker comes to take over
        # (started meanwhile, so that worker A surely had the export).
        second = start_export(user, file_ids, "black-holed")
        assert lease_of(stack.infra, second["id"])[0].endswith(f":{worker_a.pid}")
        proxy.black_hole()
        holed_at = time.monotonic()
        worker_b: ServiceProcess = stack.infra.service(
            "export-worker", WAYBILL_AMQP_HEARTBEAT_SECONDS=str(HEARTBEAT)
        ).start()
        stack.services["export-worker-b"] = worker_b
        wait_for(
            lambda: not worker_a.ready(),
            timeout=NOTICED_WITHIN + 5,
            interval=0.05,
            message="worker A to notice the partition",
        )
        noticed = time.monotonic() - holed_at
        assert noticed <= NOTICED_WITHIN, noticed
        wait_for(
            lambda: not lease_of(stack.infra, second["id"])[0].endswith(f":{worker_a.pid}"),
            timeout=10,
            interval=0.05,
            message="worker A to hand the task back",
        )
        handed_back = time.monotonic() - holed_at
        wait_for(
            lambda: lease_of(stack.infra, second["id"])[0].endswith(f":{worker_b.pid}"),
            timeout=30,
            message="the lease to move to worker B",
        )
        moved = time.monotonic() - holed_at
        completed_once(user, second["id"])
        assert lease_of(stack.infra, second["id"])[1] == 2
        hole_recovered = time.monotonic() - holed_at
        # Cut off, worker A still stops cleanly: nothing to drain, no consumer to cancel.
        stopping = time.monotonic()
        assert worker_a.terminate(timeout=15) == 0
        stopped = time.monotonic() - stopping
        print(
            f"connection reset mid-export: completed once {drop_recovered:.1f} s later "
            f"(attempt 2); black-holed mid-export: noticed after {noticed:.1f} s "
            f"(heartbeat {HEARTBEAT} s, bound {NOTICED_WITHIN} s), handed back after "
            f"{handed_back:.1f} s, lease on worker B (just started) after {moved:.1f} s, "
            f"completed once {hole_recovered:.1f} s after the partition; "
            f"worker A, still cut off, exited 0 {stopped:.1f} s after SIGTERM"
        )
