"""Status events of one task attempt, numbered so the tracker can drop duplicates.

Publishing is pipelined: `emit` sends at once and only the terminal event waits for
the broker's confirms (of itself and of every event before it). A worker that dies
with an event unconfirmed loses nothing: its lease runs out and the task runs again.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from uuid import UUID

from waybill_shared.contracts.messages import TaskEvent, TaskKind
from waybill_shared.messaging.broker import Broker

TERMINAL_EVENTS = frozenset({"completed", "failed", "cancelled"})


class EventEmitter:
    def __init__(
        self, broker: Broker, *, task_id: UUID, kind: TaskKind, attempt: int, principal: str
    ) -> None:
        self.broker = broker
        self.task_id = task_id
        self.kind: TaskKind = kind
        self.attempt = attempt
        # Whose task it is: the first word of every event's routing key, so that only
        # that principal (and the tracker) can receive them.
        self.principal = principal
        self._seq = 0
        self._unconfirmed: list[asyncio.Future[None]] = []
        self._loop = asyncio.get_running_loop()

    async def emit(self, event: str, **fields: Any) -> TaskEvent:
        """Publish; a terminal event also waits for every confirm."""
        message = self.emit_nowait(event, **fields)
        if event in TERMINAL_EVENTS:
            await self.confirmed()
        return message

    def emit_threadsafe(self, event: str, **fields: Any) -> None:
        """`emit_nowait` from a worker thread (the loop publishes it, in order)."""
        self._loop.call_soon_threadsafe(functools.partial(self.emit_nowait, event, **fields))

    def emit_nowait(self, event: str, **fields: Any) -> TaskEvent:
        """Publish without waiting for the confirm (on the event loop's thread)."""
        self._seq += 1
        message = TaskEvent(
            task_id=self.task_id,
            kind=self.kind,
            attempt=self.attempt,
            seq=self._seq,
            event=event,
            **fields,
        )
        self._unconfirmed.append(
            self.broker.publish_soon(
                message,
                message_id=f"{self.task_id}:{self.attempt}:{self._seq}",
                routing_key=self.broker.topology.event_key(self.principal, self.kind, event),
            )
        )
        return message

    async def confirmed(self) -> None:
        """Wait until the broker confirmed every event emitted so far."""
        pending, self._unconfirmed = self._unconfirmed, []
        if pending:
            # Every outcome is collected (none left "never retrieved"), the first
            # failure raised.
            for outcome in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome

    async def settle(self) -> None:
        """Wait for the events still in flight, ignoring failures: the attempt is over,
        and what it could not report is reported by the next one."""
        pending, self._unconfirmed = self._unconfirmed, []
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
