"""Live progress as Server-Sent Events, against the running services: a job's and a
task's stream follow it in order to its terminal state, resume after Last-Event-ID
without a repeat, end with a cancel, answer 404 to another user, and keep working
when the gateway's one LISTEN connection is lost."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from httpx_sse import connect_sse

from support.provenance import Recorder
from support.stack import ServiceProcess, Stack, upload, wait_for
from waybill_gateway.main import LISTENER_NAME
from waybill_shared.db.pg import init_json_codecs
from waybill_shared.tasks.repository import register_task

RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "expired": 3}
NAMES = set(RANK) | {"progress"}


@dataclass(frozen=True)
class Received:
    id: int
    event: str
    data: dict[str, Any]
    at: float  # time.monotonic() when it arrived


@dataclass
class Followed:
    status: int
    events: list[Received]
    ended_by_server: bool


def follow(
    client: httpx.Client,
    path: str,
    *,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    read_timeout: float = 90,
    first_seen: threading.Event | None = None,
) -> Followed:
    """Reads a stream until the server ends it (or `stop_after` events); sets
    `first_seen` when the first event arrived."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    timeout = httpx.Timeout(10, read=read_timeout)
    with connect_sse(client, "GET", path, headers=headers, timeout=timeout) as source:
        if source.response.status_code != 200:
            source.response.read()
            return Followed(source.response.status_code, [], True)
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events: list[Received] = []
        for sse in source.iter_sse():
            events.append(Received(int(sse.id), sse.event, json.loads(sse.data), time.monotonic()))
            if first_seen is not None:
                first_seen.set()
            if stop_after is not None and len(events) >= stop_after:
                return Followed(200, events, False)
    return Followed(200, events, True)


@dataclass
class Background:
    """A stream read by a thread; `out` holds its Followed once it ended."""

    thread: threading.Thread
    out: list[Followed]

    def result(self, timeout: float = 30) -> Followed:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"
        return self.out[0]


def in_background(client: httpx.Client, path: str) -> Background:
    """Follows a stream in a thread; returns once its first event arrived."""
    out: list[Followed] = []
    first = threading.Event()

    def run() -> None:
        try:
            out.append(follow(client, path, first_seen=first))
        except httpx.HTTPError:  # the connection went away under the reader
            out.append(Followed(0, [], False))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert first.wait(30), "no first event"
    return Background(thread, out)


def assert_in_order(events: list[Received], *, ends: str) -> None:
    """Ids grow, status and progress never go back, each name says what changed, the
    last message is the terminal state."""
    assert events, "no event"
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)), ids
    for before, after in itertools.pairwise(events):
        assert RANK[after.data["status"]] >= RANK[before.data["status"]], (before, after)
        assert after.data["progress"] >= before.data["progress"], (before, after)
        expected = "progress" if after.data["status"] == before.data["status"] else None
        assert after.event == (expected or after.data["status"]), (before, after)
    assert all(e.event in NAMES for e in events)
    assert events[0].event == events[0].data["status"]
    assert events[-1].event == ends and events[-1].data["status"] == ends
    assert all(e.data["status"] not in ("completed", "failed", "cancelled") for e in events[:-1])


def without_links(job: dict[str, Any]) -> dict[str, Any]:
    """A job without its download links (signed anew at every read)."""
    return {
        **job,
        "download_url": None,
        "files": [{**f, "download_url": None} for f in job["files"]],
    }


def three_file_export(user: httpx.Client) -> dict[str, Any]:
    # Large enough that each file takes a visible while (~0.1 s or more): the tracker then
    # records the files' steps in separate batches, which the stream must show.
    rows = "".join(f"g{i},{i},{i * 0.5}\n" for i in range(200_000)).encode()
    files = [upload(user, f"counts{i}.csv", b"gene,n,x\n" + rows) for i in range(3)]
    response = user.post(
        "/api/data-export/jobs",
        json={
            "name": "streamed",
            "file_ids": [f["id"] for f in files],
            "export_format": "parquet",
            "export_options": {"compression": "zstd"},
        },
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def database_url(stack: Stack) -> str:
    return stack.infra.database_url.replace("postgresql+asyncpg", "postgresql")


def queued_export(stack: Stack, owner_id: int) -> int:
    """A job that waits for a worker: registered as the gateway registers one, but with
    no command, so it stays pending until the test moves it."""

    async def register() -> int:
        conn = await asyncpg.connect(database_url(stack))
        try:
            await init_json_codecs(conn)
            registered = await register_task(
                conn,
                task_uuid=uuid.uuid4(),
                kind="data_export",
                owner_id=owner_id,
                request={"name": "queued", "export_format": "zip", "file_ids": []},
                total_items=1,
                items=[{"file_id": None, "dataset_id": None, "filename": "", "status": "pending"}],
            )
            return registered.task.id
        finally:
            await conn.close()

    return asyncio.run(register())


def listener_backends(stack: Stack) -> list[int]:
    """The pids of the LISTEN connections the gateways hold on the session's database."""

    async def query() -> list[int]:
        conn = await asyncpg.connect(database_url(stack))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                "AND datname = current_database()",
                LISTENER_NAME,
            )
            return [r["pid"] for r in rows]
        finally:
            await conn.close()

    return asyncio.run(query())


def terminate_backends(stack: Stack, pids: list[int]) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url(stack))
        try:
            await conn.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_job_stream_follows_the_job_in_order_to_its_end(stack: Stack) -> None:
    with stack.new_user() as user:
        job = three_file_export(user)
        path = f"/api/data-export/jobs/{job['id']}/stream"
        started = time.monotonic()
        followed = follow(user, path)
        took = time.monotonic() - started
        assert followed.status == 200 and followed.ended_by_server
        events = followed.events
        print(
            f"{len(events)} events in {took:.1f} s: {[(e.event, e.data['progress']) for e in events]}"
        )
        assert_in_order(events, ends="completed")
        assert events[-1].data["progress"] == 100
        # The data is the job as its GET answers it: a client just replaces its copy.
        now = user.get(f"/api/data-export/jobs/{job['id']}").json()
        assert without_links(events[-1].data) == without_links(now)
        assert events[-1].data["download_url"]
        # Every step the tracker recorded was seen or folded into a later message: the
        # progress steps arrive (not only the end).
        assert len(events) >= 3, events


def subscribers(stack: Stack) -> float:
    """The streams the session's gateway follows tasks for (its metrics)."""
    metrics = httpx.get(f"{stack.gateway_url}/metrics").text
    (line,) = [m for m in metrics.splitlines() if m.startswith("waybill_task_subscribers ")]
    return float(line.split()[1])


def test_a_reconnection_resumes_after_the_last_event_id(stack: Stack) -> None:
    with stack.new_user() as user:
        job = three_file_export(user)
        path = f"/api/data-export/jobs/{job['id']}/stream"
        first = follow(user, path, stop_after=1)
        assert first.status == 200 and len(first.events) == 1
        rest = follow(user, path, last_event_id=first.events[0].id)
        assert rest.status == 200 and rest.ended_by_server
        assert all(e.id > first.events[0].id for e in rest.events), (first, rest)
        # A connection's first message is named by the status; then in order to the end.
        assert_in_order(rest.events, ends="completed")
        resumed_at = rest.events[0].data
        assert RANK[resumed_at["status"]] >= RANK[first.events[0].data["status"]]
        assert resumed_at["progress"] >= first.events[0].data["progress"]
        last = rest.events[-1].id
        # After the terminal state a reconnection gets nothing more: 204 (EventSource
        # stops reconnecting); a new client still gets the end.
        assert follow(user, path, last_event_id=last).status == 204
        again = follow(user, path)
        assert [(e.id, e.event) for e in again.events] == [(last, "completed")]
        assert again.ended_by_server


def test_a_client_that_goes_away_is_let_go(stack: Stack) -> None:
    with stack.new_user() as user:
        job_id = queued_export(stack, user.get("/api/users/me").json()["id"])
        before = subscribers(stack)
        stream = in_background(user, f"/api/data-export/jobs/{job_id}/stream")
        assert subscribers(stack) == before + 1
        user.close()  # mid-stream: the job is still pending
        assert not stream.result().ended_by_server
        wait_for(lambda: subscribers(stack) == before, timeout=10, message="no subscriber left")


def test_a_cancelled_job_ends_its_stream_with_cancelled(stack: Stack) -> None:
    with stack.new_user() as user:
        job_id = queued_export(stack, user.get("/api/users/me").json()["id"])
        path = f"/api/data-export/jobs/{job_id}/stream"
        stream = in_background(user, path)
        assert user.post(f"/api/data-export/jobs/{job_id}/cancel").status_code == 200
        answered = time.monotonic()
        followed = stream.result()
        # Woken by the cancel's NOTIFY, not by a keep-alive timeout (15 s) or a poll.
        latency = followed.events[-1].at - answered
        print(f"cancelled reached the stream {latency * 1000:.0f} ms after the cancel's answer")
        assert latency < 3.0
        assert [e.event for e in followed.events] == ["pending", "cancelled"]
        assert followed.events[-1].data["error_message"] == "cancelled by the user"
        assert followed.ended_by_server


def test_a_deleted_job_ends_its_stream(stack: Stack) -> None:
    with stack.new_user() as user:
        job_id = queued_export(stack, user.get("/api/users/me").json()["id"])
        stream = in_background(user, f"/api/data-export/jobs/{job_id}/stream")
        assert user.delete(f"/api/data-export/jobs/{job_id}").status_code == 204
        followed = stream.result()
        assert followed.ended_by_server and [e.event for e in followed.events] == ["pending"]


def test_a_task_stream_answers_what_its_result_answers(stack: Stack) -> None:
    with stack.new_user() as user:
        recorder = Recorder(user)
        history = recorder.history("streamed history")
        recorder.dataset(history, b"a\tb\n1\t2\n", "table.tsv")
        response = user.post(
            f"/api/histories/{history}/prepare_store_download",
            json={"model_store_format": "rocrate.zip"},
        )
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]
        followed = follow(user, f"/api/tasks/{task_id}/stream")
        assert followed.status == 200 and followed.ended_by_server
        assert_in_order(followed.events, ends="completed")
        final = followed.events[-1].data
        assert final == user.get(f"/api/tasks/{task_id}/result").json()
        assert final["state"] == "SUCCESS" and final["progress"] == 100


def test_streams_are_404_for_another_user_as_their_get(stack: Stack) -> None:
    with stack.new_user() as owner, stack.new_user() as other:
        job_id = queued_export(stack, owner.get("/api/users/me").json()["id"])
        task_id = owner.get(f"/api/data-export/jobs/{job_id}").json()["task_id"]
        for path, get in (
            (f"/api/data-export/jobs/{job_id}/stream", f"/api/data-export/jobs/{job_id}"),
            (f"/api/tasks/{task_id}/stream", f"/api/tasks/{task_id}/result"),
        ):
            answer = other.get(path)
            assert answer.status_code == 404 and answer.json() == other.get(get).json()
        unknown = owner.get(f"/api/tasks/{uuid.uuid4()}/stream")
        assert unknown.status_code == 404
        assert owner.get("/api/tasks/not-a-uuid/stream").status_code == 404
        no_key = httpx.get(f"{stack.gateway_url}/api/data-export/jobs/{job_id}/stream")
        assert no_key.status_code == 401
        bad = owner.get(
            f"/api/data-export/jobs/{job_id}/stream", headers={"Last-Event-ID": "yesterday"}
        )
        assert bad.status_code == 422 and "Last-Event-ID" in bad.json()["detail"]
        owner.post(f"/api/data-export/jobs/{job_id}/cancel")


@dataclass
class QuickGateway:
    process: ServiceProcess
    others: set[int]  # the listening connections of the other gateways

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}"


@pytest.fixture(scope="module")
def quick_gateway(stack: Stack) -> Iterator[QuickGateway]:
    """A second gateway on the same services, with a keep-alive every second and its
    listener checked every second."""
    others = set(listener_backends(stack))
    gateway = stack.infra.service(
        "gateway",
        WAYBILL_STREAM_KEEPALIVE_SECONDS="1",
        WAYBILL_TASK_LISTENER_CHECK_SECONDS="1",
    ).start()
    gateway.wait_ready()
    yield QuickGateway(gateway, others)
    gateway.terminate(timeout=20)


def test_one_listening_connection_serves_every_stream_and_comes_back(
    stack: Stack, quick_gateway: QuickGateway
) -> None:
    def ours() -> list[int]:
        return [p for p in listener_backends(stack) if p not in quick_gateway.others]

    with stack.new_user() as owner:
        me = owner.get("/api/users/me").json()["id"]
        jobs = [queued_export(stack, me) for _ in range(3)]
        with httpx.Client(base_url=quick_gateway.url, headers=owner.headers) as user:
            streams = [in_background(user, f"/api/data-export/jobs/{j}/stream") for j in jobs]
            # One listening connection, however many streams are open.
            listening = wait_for(ours, message="the gateway's listener")
            assert len(listening) == 1, listening
            # Lose it, and cancel while it is away: the change is read again once the
            # listener is back, so no stream misses it.
            terminate_backends(stack, listening)
            lost_at = time.monotonic()
            assert user.post(f"/api/data-export/jobs/{jobs[0]}/cancel").status_code == 200
            back = wait_for(ours, timeout=20, message="the listener to reconnect")
            print(f"listener back after {time.monotonic() - lost_at:.1f} s (pid {back})")
            assert len(back) == 1 and back != listening
            assert [e.event for e in streams[0].result().events] == ["pending", "cancelled"]
            # And live again for the others.
            for job_id, stream in zip(jobs[1:], streams[1:], strict=True):
                assert user.post(f"/api/data-export/jobs/{job_id}/cancel").status_code == 200
                assert [e.event for e in stream.result().events] == ["pending", "cancelled"]


def test_a_quiet_stream_sends_keep_alive_comments(
    stack: Stack, quick_gateway: QuickGateway
) -> None:
    with stack.new_user() as owner:
        job_id = queued_export(stack, owner.get("/api/users/me").json()["id"])
        url = f"{quick_gateway.url}/api/data-export/jobs/{job_id}/stream"
        received = b""
        with httpx.stream("GET", url, headers=dict(owner.headers), timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["cache-control"] == "no-cache"
            started = time.monotonic()
            for chunk in response.iter_raw():
                received += chunk
                if received.count(b": ping\n") >= 2:
                    break
            took = time.monotonic() - started
        assert received.startswith(b"event: pending\n")
        assert 1.0 <= took < 5.0, took
        owner.post(f"/api/data-export/jobs/{job_id}/cancel")


def test_a_stopping_gateway_ends_its_streams_at_once(stack: Stack) -> None:
    """uvicorn waits for open responses before it stops (up to the shutdown grace, 10 s
    here): an open stream must not hold the gateway that long."""
    gateway = stack.infra.service("gateway").start()
    gateway.wait_ready()
    with stack.new_user() as owner:
        job_id = queued_export(stack, owner.get("/api/users/me").json()["id"])
        with httpx.Client(
            base_url=f"http://127.0.0.1:{gateway.port}", headers=owner.headers
        ) as user:
            stream = in_background(user, f"/api/data-export/jobs/{job_id}/stream")
            started = time.monotonic()
            code = gateway.terminate(timeout=30)
            took = time.monotonic() - started
            followed = stream.result()
        print(f"gateway with an open stream stopped in {took:.2f} s")
        assert code in (0, -signal.SIGTERM) and took < 5, (code, took)
        assert followed.ended_by_server and [e.event for e in followed.events] == ["pending"]
        # The client resumes on another gateway: nothing repeated, the change arrives.
        assert owner.post(f"/api/data-export/jobs/{job_id}/cancel").status_code == 200
        rest = follow(owner, f"/api/data-export/jobs/{job_id}/stream", last_event_id=0)
        assert [e.event for e in rest.events] == ["cancelled"]
