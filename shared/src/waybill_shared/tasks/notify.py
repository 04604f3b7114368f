"""Telling other processes that tasks changed, through PostgreSQL's LISTEN/NOTIFY.

Whoever records a task's events also NOTIFYs its id on `CHANNEL`, in the same
transaction (see repository.apply_events and record_system_event): PostgreSQL delivers
the notice only at commit, and never for a change that rolled back, so a listener that
reads the task on a notice sees what the notice announced. A notice carries only task
ids; the database stays the one place that says what changed.

A process that follows tasks (the gateway's event streams) holds one `TaskListener`:
one connection that LISTENs and fans each notice out to the subscribers of its tasks,
however many follow them. Notices sent while the connection was away are lost, so
after every (re)connection every subscriber is woken to read its task again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
import structlog

from waybill_shared import metrics
from waybill_shared.db.pg import Connection

log = structlog.get_logger(__name__)

CHANNEL = "waybill_task_events"
# PostgreSQL refuses a payload of 8,000 bytes or more.
MAX_PAYLOAD_BYTES = 7_999


def payloads(task_ids: Iterable[int]) -> list[str]:
    """The task ids, comma-separated, in as few payloads as fit (one for any batch the
    tracker applies: ~700 ids fit in one)."""
    chunks: list[str] = []
    current = ""
    for task_id in sorted(set(task_ids)):
        text = str(task_id)
        if current and len(current) + 1 + len(text) > MAX_PAYLOAD_BYTES:
            chunks.append(current)
            current = ""
        current = f"{current},{text}" if current else text
    if current:
        chunks.append(current)
    return chunks


def task_ids(payload: str) -> list[int]:
    """The ids a payload names; anything else in it is ignored (anyone who may write
    to the database may NOTIFY on the channel)."""
    return [int(part) for part in payload.split(",") if part.strip().isdigit()]


async def notify(conn: Connection, task_ids: Iterable[int]) -> None:
    """Tell listeners these tasks changed, at the commit of `conn`'s transaction.
    (The statements that record events notify within themselves, at no extra round
    trip; this is for other changes, such as a deletion.)"""
    await conn.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, payloads(task_ids)
    )


class Subscription:
    """One follower of one task: `wait` returns True when the task may have changed
    since the last wait, False when `seconds` passed without a word."""

    def __init__(self, listener: TaskListener, task_id: int) -> None:
        self.listener = listener
        self.task_id = task_id
        self._changed = asyncio.Event()

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        changed = self._changed.is_set()
        self._changed.clear()
        return changed

    def close(self) -> None:
        self.listener._unsubscribe(self)


class TaskListener:
    """One LISTEN connection per process, shared by every subscriber.

    `run` keeps the connection: it checks it every `check_seconds` (a dead peer is
    otherwise noticed only by TCP, minutes later), and on its loss reconnects every
    `retry_seconds` and wakes every subscriber, which then reads its task again."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        check_seconds: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._connect = connect
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self._subscribers: dict[int, set[Subscription]] = {}
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()
        # Bumped by every notice and (re)connection: see `subscribe`.
        self.generation = 0
        self.connections = 0  # how many times it connected (for tests and logs)
        self.closing = False

    def subscribe(self, task_id: int, *, since: int | None = None) -> Subscription:
        """Follow a task. `since` is the `generation` read before the caller read the
        task: if any notice came in between, the subscription starts woken, so a change
        committed while the caller was reading is not missed."""
        subscription = Subscription(self, task_id)
        self._subscribers.setdefault(task_id, set()).add(subscription)
        metrics.TASK_SUBSCRIBERS.inc()
        if since is not None and since != self.generation:
            subscription.wake()
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        followers = self._subscribers.get(subscription.task_id)
        if followers is not None and subscription in followers:
            followers.discard(subscription)
            metrics.TASK_SUBSCRIBERS.dec()
            if not followers:
                del self._subscribers[subscription.task_id]

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def close_streams(self) -> None:
        """The process stops: wake every subscriber to see `closing` and let go."""
        self.closing = True
        self._wake_all()

    def _on_notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.generation += 1
        for task_id in task_ids(payload):
            for subscription in self._subscribers.get(task_id, ()):
                subscription.wake()

    def _wake_all(self) -> None:
        self.generation += 1
        for followers in self._subscribers.values():
            for subscription in followers:
                subscription.wake()

    async def run(self) -> None:
        failing = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                self._lost.clear()
                conn.add_termination_listener(lambda _: self._lost.set())
                await conn.add_listener(CHANNEL, self._on_notice)
                self.connections += 1
                self.connected.set()
                failing = False
                # Whatever was committed while we were not listening: read it again.
                self._wake_all()
                log.info("listening for task changes", connections=self.connections)
                await self._watch(conn)
                log.warning("task listener lost its connection")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # once per outage, not at every retry
                    log.warning("task listener lost its connection", error=repr(exc))
                failing = True
            finally:
                self.connected.clear()
                if conn is not None:
                    conn.terminate()
            self._wake_all()
            await asyncio.sleep(self.retry_seconds)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Returns when the connection is gone."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_seconds):
                    await self._lost.wait()
            if self._lost.is_set() or conn.is_closed():
                return
            async with asyncio.timeout(self.check_seconds):
                await conn.execute("SELECT 1")
