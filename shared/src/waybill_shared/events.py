"""Status events of one task attempt, numbered so the tracker can drop duplicates."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from waybill_shared.contracts.messages import TaskEvent, TaskKind
from waybill_shared.messaging.broker import Broker


class EventEmitter:
    def __init__(self, broker: Broker, *, task_id: UUID, kind: TaskKind, attempt: int) -> None:
        self.broker = broker
        self.task_id = task_id
        self.kind: TaskKind = kind
        self.attempt = attempt
        self._seq = 0

    async def emit(self, event: str, **fields: Any) -> TaskEvent:
        self._seq += 1
        message = TaskEvent(
            task_id=self.task_id,
            kind=self.kind,
            attempt=self.attempt,
            seq=self._seq,
            event=event,
            **fields,
        )
        await self.broker.publish(message, message_id=f"{self.task_id}:{self.attempt}:{self._seq}")
        return message
