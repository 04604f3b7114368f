"""Take RabbitMQ away while requests arrive, then bring it back: every request accepted
before, during and after completes, once (batch exports, a history export and a
workflow extraction); a request refused during the outage (503)
left nothing half-made.

The broker is a throwaway node of this test's own (tests/support/rabbit_node.py), with
a database, S3 server and services of their own: the shared broker is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.provenance import Recorder
from support.rabbit_node import RabbitNode
from support.stack import (
    Stack,
    create_export,
    stack_on_own_server,
    upload,
    wait_for,
)


@pytest.fixture
def own_broker_stack(tmp_path: Path) -> Iterator[tuple[RabbitNode, Stack]]:
    node = RabbitNode()
    with stack_on_own_server(node, tmp_path, amqp_url=node.url, rabbitmqctl=node.ctl) as stack:
        yield node, stack


def assert_degraded_without_broker(stack: Stack) -> str:
    """Without the broker the gateway stays in its Service (its outbox holds the
    commands) and says it is degraded; every worker leaves its Service. Returns how
    long the workers took to notice."""
    started = time.monotonic()
    gateway = stack.services["gateway"]
    workers = [s for name, s in stack.services.items() if name != "gateway"]
    wait_for(
        lambda: not any(w.ready() for w in workers),
        timeout=30,
        message="every worker not ready without the broker",
    )
    noticed = time.monotonic() - started
    for worker in workers:
        answer = httpx.get(f"http://127.0.0.1:{worker.port}/readyz", timeout=5)
        assert answer.status_code == 503, (worker.name, answer.text)
        body = answer.json()
        assert body["ready"] is False and body["status"] == "unavailable", body
        assert body["checks"]["broker"].startswith("unavailable"), body
    base = f"http://127.0.0.1:{gateway.port}"
    answer = httpx.get(f"{base}/readyz", timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ready"] is True and body["status"] == "degraded", body
    assert body["checks"]["database"] == "ok", body
    assert body["checks"]["broker"].startswith("degraded"), body
    scraped = httpx.get(f"{base}/metrics", timeout=5).text
    assert "waybill_degraded 1.0" in scraped
    assert 'waybill_dependency_up{dependency="broker"} 0.0' in scraped
    assert 'waybill_dependency_up{dependency="database"} 1.0' in scraped
    return f"workers not ready {noticed:.1f} s after the broker stopped, gateway ready (degraded)"


@pytest.mark.slow
def test_broker_restart_while_requests_arrive(
    own_broker_stack: tuple[RabbitNode, Stack],
) -> None:
    node, stack = own_broker_stack
    with stack.new_user() as user:
        rows = b"id,value\n" + b"".join(f"{i},{i * 3}\n".encode() for i in range(30_000))
        file_ids = [upload(user, f"o{i}.csv", rows)["id"] for i in range(3)]
        rec = Recorder(user)
        history = rec.history("outage")
        source = rec.dataset(history, b"b\na\n", "in.txt")
        run = rec.run(history, "sort1", {"input": ("hda", source["id"])}, ["out"])
        responses: dict[str, list[httpx.Response]] = {"before": [], "during": [], "after": []}

        responses["before"] = [
            create_export(user, f"before {i}", file_ids, "parquet") for i in range(6)
        ]
        time.sleep(0.5)  # some of them are now in flight in the worker
        node.stop()
        down_at = time.monotonic()
        # Tasks of the other kinds, asked for while the broker is away.
        history_export = user.post(
            f"/api/histories/{history}/prepare_store_download",
            json={"model_store_format": "rocrate.zip"},
        )
        extraction = user.post(
            "/api/workflows/extract",
            json={"workflow_name": "w", "job_ids": [run["jobs"][0]["id"]]},
        )
        assert history_export.status_code == 202, history_export.text
        assert extraction.status_code == 202, extraction.text
        readiness = assert_degraded_without_broker(stack)
        while time.monotonic() - down_at < 8:
            responses["during"].append(
                create_export(user, f"during {len(responses['during'])}", file_ids, "parquet")
            )
            time.sleep(0.4)
        node.start()
        up_at = time.monotonic()
        for service in stack.services.values():
            service.wait_ready(timeout=60)
        ready_again = time.monotonic() - up_at
        responses["after"] = [
            create_export(user, f"after {i}", file_ids, "parquet") for i in range(6)
        ]

        for phase, answers in responses.items():
            codes = {r.status_code for r in answers}
            assert codes <= {202, 503}, (phase, [r.text for r in answers])
            for refused in (r for r in answers if r.status_code == 503):
                assert "detail" in refused.json()
        accepted = [r.json()["id"] for rs in responses.values() for r in rs if r.status_code == 202]
        refused = sum(r.status_code == 503 for rs in responses.values() for r in rs)
        assert all(r.status_code == 202 for r in responses["before"] + responses["after"])

        def statuses() -> dict[str, int]:
            by_status: dict[str, int] = user.get("/api/data-export/statistics").json()["by_status"]
            return by_status

        wait_for(
            lambda: statuses().get("completed", 0) == len(accepted),
            timeout=240,
            interval=0.5,
            message=f"all {len(accepted)} accepted exports completed",
        )
        for task in (history_export.json()["task_id"], extraction.json()["task_id"]):
            wait_for(
                lambda task=task: user.get(f"/api/tasks/{task}/state").json() == "SUCCESS",
                timeout=60,
                message=f"task {task}",
            )
        recovered = time.monotonic() - up_at
        print(
            f"broker down {up_at - down_at:.1f} s; {len(accepted)} accepted "
            f"({len(responses['during'])} during the outage) and 2 other tasks, {refused} refused; "
            f"all completed {recovered:.1f} s after the broker was back; {readiness}; "
            f"every service ready again {ready_again:.1f} s after the broker was back"
        )

        # Nothing half-made: exactly the accepted jobs exist, each completed once.
        listed = user.get("/api/data-export/jobs", params={"limit": 100})
        assert listed.headers["X-Total-Count"] == str(len(accepted))
        assert sorted(item["id"] for item in listed.json()) == sorted(accepted)
        assert statuses() == {"completed": len(accepted)}
        for job_id in accepted:
            job = user.get(f"/api/data-export/jobs/{job_id}").json()
            assert job["processed_files"] == 3 and job["progress"] == 100, job
            events = user.get(f"/api/data-export/jobs/{job_id}/events").json()
            assert [e["event_type"] for e in events].count("completed") == 1
            download = httpx.get(job["download_url"], timeout=30)
            assert download.status_code == 200 and download.content[:4] == b"PK\x03\x04"
