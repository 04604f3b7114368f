"""The watcher's two ways of following a job, fast and without the stack: the gateway's
event stream (taken when present, resumed with Last-Event-ID), and polling when the
gateway has no stream. A small HTTP server plays the gateway's two routes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from waybill_cli import watch
from waybill_cli.client import Api

JOB_PATH = "/api/data-export/jobs/1"


def state(status: str, progress: int) -> dict[str, Any]:
    return {"id": 1, "name": "j", "status": status, "progress": progress, "files": []}


class FakeGateway(ThreadingHTTPServer):
    """streams: the states each stream connection announces, in turn (None: no stream
    route, 404). polled: the states successive GETs of the job move through."""

    daemon_threads = True  # a watcher's stream left open does not hold up the teardown

    def __init__(
        self, *, streams: list[list[dict[str, Any]]] | None, polled: list[dict[str, Any]]
    ) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.job = state("pending", 0)
        self.streams = streams
        self.polled = list(polled)
        self.gets = 0
        self.stream_headers: list[dict[str, str]] = []
        self.event_id = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGateway

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        gateway = self.server
        if self.path == JOB_PATH:
            body = json.dumps(gateway.job).encode()
            gateway.gets += 1
            if gateway.polled:
                gateway.job = gateway.polled.pop(0)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == JOB_PATH + "/stream":
            gateway.stream_headers.append(dict(self.headers))
            if not gateway.streams:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for announced in gateway.streams.pop(0):
                gateway.job = announced
                gateway.event_id += 1
                event = f"id: {gateway.event_id}\nevent: status\ndata: {json.dumps(announced)}\n\n"
                self.wfile.write(event.encode())
                self.wfile.flush()
                time.sleep(0.05)
            # HTTP/1.0: returning closes the connection, which ends the stream.
        else:
            self.send_error(404)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeGateway] = []

    def start(**kwargs: Any) -> FakeGateway:
        gateway = FakeGateway(**kwargs)
        threading.Thread(target=gateway.serve_forever, daemon=True).start()
        servers.append(gateway)
        return gateway

    yield start
    for gateway in servers:
        gateway.shutdown()
        gateway.server_close()


def follow(gateway: FakeGateway) -> list[dict[str, Any]]:
    api = Api(gateway.url, "k")
    try:
        return [snapshot for _, snapshot in watch.watch(api, [watch.export_job(api, 1)])]
    finally:
        api.close()


def test_the_stream_wakes_the_watcher_and_resumes_after_a_break(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polling would take a minute: finishing in seconds proves the events drove it.
    for name in ("POLL_START", "POLL_MAX", "STREAM_CHECK"):
        monkeypatch.setattr(watch, name, 60.0)
    monkeypatch.setattr(watch, "RECONNECT_DELAY", 0.05)
    gateway = serve(
        # The first connection breaks off before the end; the second resumes.
        streams=[[state("processing", 30), state("processing", 60)], [state("completed", 100)]],
        polled=[],
    )
    started = time.monotonic()
    snapshots = follow(gateway)
    assert time.monotonic() - started < 10
    assert snapshots[0]["status"] == "pending" and snapshots[-1]["status"] == "completed"
    progress = [s["progress"] for s in snapshots]
    assert progress == sorted(progress) and progress[-1] == 100
    first, second = gateway.stream_headers
    assert first["Authorization"] == "Bearer k" and "Last-Event-ID" not in first
    assert second["Last-Event-ID"] == "2"


def test_without_a_stream_the_watcher_polls(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "POLL_START", 0.01)
    monkeypatch.setattr(watch, "POLL_MAX", 0.05)
    gateway = serve(streams=None, polled=[state("processing", 50), state("failed", 50)])
    snapshots = follow(gateway)
    assert [s["status"] for s in snapshots] == ["pending", "processing", "failed"]
    assert len(gateway.stream_headers) == 1  # asked once, then never again
    assert gateway.gets == 3
