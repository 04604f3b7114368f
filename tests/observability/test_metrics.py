"""Prometheus metrics per service, with plausible values after real work."""

from __future__ import annotations

import re

import httpx
import pika

from support.stack import Stack, finished, upload, wait_for


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metrics(stack: Stack, service: str) -> str:
    return httpx.get(f"http://127.0.0.1:{stack.services[service].port}/metrics").text


def test_metrics_after_an_export_and_a_dead_letter(stack: Stack) -> None:
    with stack.new_user() as user:
        data = b"gene,count\n" + b"".join(f"g{i},{i}\n".encode() for i in range(1000))
        f = upload(user, "m.csv", data)
        job = user.post(
            "/api/data-export/jobs",
            json={"name": "m", "file_ids": [f["id"]], "export_format": "csv"},
        ).json()
        assert finished(user, job["id"])["status"] == "completed"

    gateway = metrics(stack, "gateway")
    assert (
        sample(
            gateway,
            "waybill_http_requests_total",
            method="POST",
            route="/api/data-export/jobs",
            status="202",
        )
        >= 1
    )
    assert (
        sample(
            gateway, "waybill_http_request_seconds_count", route="/api/data-export/jobs/{job_id}"
        )
        >= 1
    )

    tracker = metrics(stack, "tracker")
    assert sample(tracker, "waybill_tasks_total", kind="data_export", status="completed") >= 1
    assert (
        sample(
            tracker, "waybill_task_duration_seconds_count", kind="data_export", status="completed"
        )
        >= 1
    )
    assert sample(tracker, "waybill_queue_lag_seconds_count") >= 1

    worker = metrics(stack, "export-worker")
    assert sample(worker, "waybill_bytes_converted_total", format="csv") >= len(data)

    before = sample(metrics(stack, "export-worker"), "waybill_dead_letters_total")
    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    channel = connection.channel()
    channel.basic_publish(
        f"{stack.infra.prefix}.commands",
        "export.requested",
        b"not json",
        pika.BasicProperties(
            content_type="application/json", type="waybill.data_export.requested.v1"
        ),
    )
    connection.close()
    wait_for(
        lambda: sample(metrics(stack, "export-worker"), "waybill_dead_letters_total") > before,
        message="the dead letter counted",
    )
    assert re.search(
        r'waybill_dead_letters_total\{queue="[^"]+\.export\.requests"\}',
        metrics(stack, "export-worker"),
    )
