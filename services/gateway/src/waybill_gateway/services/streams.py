"""Live progress as Server-Sent Events (GET .../stream): a task's state, sent on every
change the database recorded, until it ends.

Each message is the task as its GET answers it, at a change: `id` the id of the
latest event the change recorded (event ids grow per task in commit order, see
tasks.repository.get_task_and_last_event), `event` the new status when the status
changed, else `progress`. Changes recorded between two reads arrive as one message,
the later state: a client that replaces its copy with each message misses nothing
and never goes backwards. The wake-ups come from the process's one TaskListener
(LISTEN/NOTIFY); the framing is FastAPI's (fastapi.sse).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog
from fastapi.sse import EventSourceResponse, ServerSentEvent, format_sse_event
from starlette.responses import Response

from waybill_gateway.services.errors import Invalid, NotFound
from waybill_shared.errors import is_unavailable
from waybill_shared.tasks.notify import Subscription, TaskListener
from waybill_shared.tasks.state import TERMINAL

log = structlog.get_logger(__name__)

PROGRESS = "progress"
# A comment line, without the blank line that would end a message: clients that
# dispatch a message at every blank line once an id was seen (httpx-sse 0.4, which
# the CLI uses) would otherwise see an empty message at every keep-alive.
KEEPALIVE = b": ping\n"
# How long a stream waits before reading again after the database failed it.
READ_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    """A task as one read saw it: its id, the id of its latest event, its status, and
    the body its GET answers."""

    task_id: int
    last_event_id: int
    status: str
    body: str  # JSON, as the GET answers it


def parse_last_event_id(header: str | None) -> int | None:
    """The id a reconnecting client last received (`Last-Event-ID`), or None."""
    if header is None or not header.strip():
        return None
    try:
        return int(header.strip())
    except ValueError:
        raise Invalid(
            f"Last-Event-ID {header[:40]!r} is not an id this stream sent (an integer)"
        ) from None


class Cursor:
    """What one stream connection has sent: decides which snapshots become messages.
    Pure (no I/O), so the sequencing is tested directly."""

    def __init__(self, last_event_id: int | None = None) -> None:
        self.sent_id = last_event_id  # None: nothing yet, the first snapshot is sent
        self.sent_status: str | None = None

    def message(self, snapshot: Snapshot) -> ServerSentEvent | None:
        """The message for this snapshot, or None when the client already has it."""
        if self.sent_id is not None and snapshot.last_event_id <= self.sent_id:
            return None
        name = snapshot.status if snapshot.status != self.sent_status else PROGRESS
        self.sent_id, self.sent_status = snapshot.last_event_id, snapshot.status
        return ServerSentEvent(id=str(snapshot.last_event_id), event=name, raw_data=snapshot.body)

    @property
    def finished(self) -> bool:
        """The client has the task's terminal state: nothing more will come."""
        return self.sent_status in TERMINAL

    def nothing_more(self, snapshot: Snapshot) -> bool:
        """A reconnection after the terminal state: the stream has nothing to send."""
        return (
            snapshot.status in TERMINAL
            and self.sent_id is not None
            and snapshot.last_event_id <= self.sent_id
        )


@dataclass
class TaskStream:
    """One connection's stream of one task."""

    first: Snapshot
    cursor: Cursor
    read: Callable[[], Awaitable[Snapshot | None]]  # None: the task is gone
    subscription: Subscription
    keepalive_seconds: float

    async def events(self) -> AsyncIterator[bytes]:
        try:
            if message := self.cursor.message(self.first):
                yield encode(message)
            while not self.cursor.finished:
                if not await self.subscription.wait(self.keepalive_seconds):
                    yield KEEPALIVE
                    continue
                if self.subscription.listener.closing:
                    return  # the gateway stops: the client resumes on another
                try:
                    snapshot = await self.read()
                except Exception as exc:
                    if not is_unavailable(exc):
                        raise
                    # The database is away: keep the stream (keep-alives still flow)
                    # and read again shortly.
                    log.warning("a stream could not read its task", error=repr(exc))
                    asyncio.get_running_loop().call_later(
                        READ_RETRY_SECONDS, self.subscription.wake
                    )
                    continue
                if snapshot is None:
                    return  # deleted: its GET answers 404 now
                if message := self.cursor.message(snapshot):
                    yield encode(message)
                elif self.cursor.nothing_more(snapshot):
                    return  # ended at or before the client's Last-Event-ID
        finally:
            self.subscription.close()


def encode(message: ServerSentEvent) -> bytes:
    return format_sse_event(data_str=message.raw_data, event=message.event, id=message.id)


async def open_stream(
    *,
    listener: TaskListener,
    first: Callable[[], Awaitable[Snapshot | None]],
    read: Callable[[int], Awaitable[Snapshot | None]],
    not_found: str,
    last_event_id: str | None,
    keepalive_seconds: float,
) -> Response:
    """Read the task (`not_found` when it is not there for the caller: a 404 before
    the stream starts), follow it, and answer the stream; 204 to a reconnection after
    the terminal state (EventSource then stops reconnecting). `read` reads the task
    again by its id."""
    cursor = Cursor(parse_last_event_id(last_event_id))
    since = listener.generation
    snapshot = await first()
    if snapshot is None:
        raise NotFound(not_found)
    if cursor.nothing_more(snapshot):
        return Response(status_code=204)
    stream = TaskStream(
        first=snapshot,
        cursor=cursor,
        read=functools.partial(read, snapshot.task_id),
        subscription=listener.subscribe(snapshot.task_id, since=since),
        keepalive_seconds=keepalive_seconds,
    )
    return EventSourceResponse(
        stream.events(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
