"""The event stream's sequencing and framing, pure: which snapshot of a task becomes a
message, under which name and id, and when the stream has nothing more to say."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from waybill_gateway.services.errors import Invalid
from waybill_gateway.services.streams import (
    KEEPALIVE,
    Cursor,
    Snapshot,
    TaskStream,
    encode,
    parse_last_event_id,
)
from waybill_shared.tasks.notify import TaskListener


def snap(last_event_id: int, status: str, progress: int = 0) -> Snapshot:
    body = json.dumps({"id": 7, "status": status, "progress": progress})
    return Snapshot(task_id=7, last_event_id=last_event_id, status=status, body=body)


def names(cursor: Cursor, snapshots: list[Snapshot]) -> list[tuple[str | None, str | None]]:
    sent = [cursor.message(s) for s in snapshots]
    return [(m.event, m.id) for m in sent if m is not None]


def test_first_message_is_the_state_on_connect_then_changes_by_status_or_progress() -> None:
    cursor = Cursor()
    assert names(
        cursor,
        [
            snap(0, "pending"),
            snap(0, "pending"),  # read again, nothing new: nothing sent
            snap(3, "processing"),
            snap(5, "processing", 50),
            snap(5, "processing", 50),
            snap(9, "completed", 100),
        ],
    ) == [("pending", "0"), ("processing", "3"), ("progress", "5"), ("completed", "9")]
    assert cursor.finished


def test_a_read_that_saw_several_changes_sends_one_message_of_the_later_state() -> None:
    cursor = Cursor()
    cursor.message(snap(2, "processing"))
    message = cursor.message(snap(11, "completed", 100))
    assert message is not None and (message.event, message.id) == ("completed", "11")
    assert json.loads(message.raw_data or "") == {"id": 7, "status": "completed", "progress": 100}


def test_resume_sends_only_what_came_after_the_last_event_id() -> None:
    cursor = Cursor(last_event_id=5)
    assert cursor.message(snap(5, "processing", 50)) is None  # the client has it
    assert cursor.message(snap(4, "processing", 40)) is None  # older: never sent again
    later = cursor.message(snap(8, "processing", 80))
    # The first message of a connection is named by the status.
    assert later is not None and (later.event, later.id) == ("processing", "8")
    assert not cursor.finished


def test_a_reconnection_after_the_terminal_state_has_nothing_more() -> None:
    assert Cursor(last_event_id=9).nothing_more(snap(9, "cancelled"))
    assert not Cursor(last_event_id=8).nothing_more(snap(9, "cancelled"))
    assert not Cursor().nothing_more(snap(9, "cancelled"))  # a new client gets the end
    assert not Cursor(last_event_id=9).nothing_more(snap(9, "processing"))


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "expired"])
def test_the_stream_ends_after_any_terminal_state(status: str) -> None:
    cursor = Cursor()
    cursor.message(snap(1, "processing"))
    assert not cursor.finished
    cursor.message(snap(2, status))
    assert cursor.finished


def test_last_event_id_header() -> None:
    assert parse_last_event_id(None) is None
    assert parse_last_event_id("  ") is None
    assert parse_last_event_id(" 42 ") == 42
    with pytest.raises(Invalid, match="not an id this stream sent"):
        parse_last_event_id("abc")


def test_framing() -> None:
    message = Cursor().message(snap(3, "processing", 10))
    assert message is not None
    assert encode(message) == (
        b'event: processing\ndata: {"id": 7, "status": "processing", "progress": 10}\nid: 3\n\n'
    )


class Task:
    """A task whose reads the test scripts: each read answers the next snapshot, or
    raises it when it is an exception."""

    def __init__(self, *reads: Snapshot | BaseException | None) -> None:
        self.reads = list(reads)

    async def read(self) -> Snapshot | None:
        answer = self.reads.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def no_connection() -> asyncpg.Connection:
    raise AssertionError("no database in these tests")


def stream_of(
    listener: TaskListener, task: Task, first: Snapshot, last_event_id: int | None = None
) -> TaskStream:
    return TaskStream(
        first=first,
        cursor=Cursor(last_event_id),
        read=task.read,
        subscription=listener.subscribe(first.task_id),
        keepalive_seconds=0.05,
    )


async def collect(stream: TaskStream, listener: TaskListener, *, notices: int) -> list[bytes]:
    """The stream's output, with `notices` notices about its task sent meanwhile."""
    out: list[bytes] = []

    async def read_all() -> None:
        async for chunk in stream.events():
            out.append(chunk)

    reading = asyncio.create_task(read_all())
    for _ in range(notices):
        await asyncio.sleep(0.01)
        listener._on_notice(None, 0, "", str(stream.first.task_id))
    await asyncio.wait_for(reading, 5)
    return out


@pytest.mark.asyncio
async def test_a_stream_sends_each_change_and_ends_at_the_terminal_state() -> None:
    listener = TaskListener(no_connection)
    task = Task(snap(2, "processing", 10), snap(2, "processing", 10), snap(4, "completed", 100))
    out = await collect(stream_of(listener, task, snap(0, "pending")), listener, notices=3)
    events = [chunk.split(b"\n", 1)[0] for chunk in out if chunk.startswith(b"event:")]
    assert events == [b"event: pending", b"event: processing", b"event: completed"]
    assert listener.subscribers == 0  # let go at the end


@pytest.mark.asyncio
async def test_a_resumed_stream_ends_when_the_task_ended_before_its_last_event_id() -> None:
    listener = TaskListener(no_connection)
    task = Task(snap(7, "failed"))
    stream = stream_of(listener, task, snap(5, "processing"), last_event_id=9)
    assert await collect(stream, listener, notices=1) == []


@pytest.mark.asyncio
async def test_a_quiet_stream_keeps_alive_and_outlives_a_database_outage() -> None:
    listener = TaskListener(no_connection)
    task = Task(ConnectionRefusedError("database away"), snap(3, "cancelled"))
    stream = stream_of(listener, task, snap(0, "pending"))
    # One notice: the read fails, the stream reads again on its own a second later.
    out = await collect(stream, listener, notices=1)
    assert out[0].startswith(b"event: pending") and out[-1].startswith(b"event: cancelled")
    assert out.count(KEEPALIVE) >= 2  # 50 ms keep-alives while it waited


@pytest.mark.asyncio
async def test_a_deleted_task_ends_its_stream() -> None:
    listener = TaskListener(no_connection)
    stream = stream_of(listener, Task(None), snap(0, "pending"))
    out = await collect(stream, listener, notices=1)
    assert len(out) == 1 and out[0].startswith(b"event: pending")
