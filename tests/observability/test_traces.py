"""One trace per request: an OTLP/HTTP receiver in the test process collects the
spans of one batch export, from the gateway through the broker into the worker (its
S3 and database calls) and the tracker's write."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.broker import open_broker_space
from support.stack import (
    Infra,
    Stack,
    finished,
    free_port,
    start_stack,
    upload,
    wait_for,
)


class _Server(ThreadingHTTPServer):
    """Threaded, with a deep backlog: three services export at once, and an export
    refused at a full backlog is retried by the exporter only after a back-off."""

    request_queue_size = 64
    daemon_threads = True


class Receiver:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        service = next(
                            (
                                a.value.string_value
                                for a in resource_spans.resource.attributes
                                if a.key == "service.name"
                            ),
                            "?",
                        )
                        for scope in resource_spans.scope_spans:
                            for span in scope.spans:
                                receiver.spans.append(
                                    {
                                        "service": service,
                                        "name": span.name,
                                        "trace": span.trace_id.hex(),
                                        "id": span.span_id.hex(),
                                        "parent": span.parent_span_id.hex(),
                                    }
                                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = _Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def traced(infra: Infra) -> Iterator[tuple[Stack, Receiver]]:
    receiver = Receiver()
    # A vhost of its own: the session's worker must not take the job.
    broker = open_broker_space(infra.broker.ctl, infra.broker.server_url, f"{infra.prefix}-otel")
    stack = start_stack(
        dataclasses.replace(infra, broker=broker, prefix=broker.topology.prefix),
        ("gateway", "export-worker", "tracker"),
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    yield stack, receiver
    stack.stop()
    receiver.close()
    broker.remove()


def test_one_trace_across_gateway_worker_and_tracker(traced: tuple[Stack, Receiver]) -> None:
    stack, receiver = traced
    with stack.new_user() as user:
        f = upload(user, "traced.txt", b"follow me")
        created = user.post(
            "/api/data-export/jobs",
            json={"name": "traced", "file_ids": [f["id"]], "export_format": "zip"},
        )
        assert finished(user, created.json()["id"])["status"] == "completed"

    def trace_spans() -> list[dict[str, Any]] | None:
        with receiver.lock:
            roots = [
                s
                for s in receiver.spans
                if s["service"] == "gateway"
                and "data-export/jobs" in s["name"]
                and s["name"].startswith("POST")
                and not s["parent"]
            ]
            if not roots:
                return None
            trace = roots[-1]["trace"]
            spans = [s for s in receiver.spans if s["trace"] == trace]
        services = {s["service"] for s in spans}
        ids = {s["id"] for s in spans}
        complete = not [s for s in spans if s["parent"] and s["parent"] not in ids]
        # Children are exported before their parents end: wait until every parent is in.
        # The tracker exports twice in this trace (its outbox publish, then its consumption
        # of the worker's events): wait for the second, or the first alone can satisfy this.
        tracker_consumed = any(
            s["service"] == "tracker" and s["name"].endswith("receive") for s in spans
        )
        wanted = {"gateway", "export-worker", "tracker"} <= services and tracker_consumed
        return spans if wanted and complete else None

    spans = wait_for(
        trace_spans, timeout=60, message="spans from gateway, worker and tracker in one trace"
    )
    ids = {s["id"] for s in spans}
    orphans = [s for s in spans if s["parent"] and s["parent"] not in ids]
    assert not orphans, orphans
    assert sum(1 for s in spans if not s["parent"]) == 1  # one root: the HTTP request
    by_service: dict[str, set[str]] = {}
    for s in spans:
        by_service.setdefault(s["service"], set()).add(s["name"])
    print({k: sorted(v)[:12] for k, v in by_service.items()})
    worker_names = " ".join(by_service["export-worker"]).lower()
    assert (
        "select" in worker_names or "update" in worker_names or "insert" in worker_names
    )  # database spans
    assert "get" in worker_names or "put" in worker_names  # S3 (urllib3) spans
    tracker_names = " ".join(by_service["tracker"]).lower()
    assert "insert" in tracker_names or "update" in tracker_names or "select" in tracker_names
