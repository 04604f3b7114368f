"""Every exchange and queue, declared in one place.

Commands go to a direct exchange, events to a topic exchange. Every consumer queue is
a durable quorum queue with a delivery limit and its own dead-letter queue, so a poison
message ends up parked (with the reason) instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueSpec:
    name: str
    exchange: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"


@dataclass(frozen=True)
class Topology:
    prefix: str
    delivery_limit: int = 5

    @property
    def commands_exchange(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def events_exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def export_requests(self) -> QueueSpec:
        return QueueSpec(
            f"{self.prefix}.export.requests",
            self.commands_exchange,
            ("export.requested", "history_export.requested", "history_import.requested"),
        )

    @property
    def extraction_requests(self) -> QueueSpec:
        return QueueSpec(
            f"{self.prefix}.extraction.requests",
            self.commands_exchange,
            ("extraction.requested",),
        )

    @property
    def tracker_events(self) -> QueueSpec:
        return QueueSpec(f"{self.prefix}.tracker.events", self.events_exchange, ("task.#",))

    @property
    def provenance_events(self) -> QueueSpec:
        return QueueSpec(
            f"{self.prefix}.provenance.events", self.commands_exchange, ("provenance.recorded",)
        )

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return (
            self.export_requests,
            self.extraction_requests,
            self.tracker_events,
            self.provenance_events,
        )

    def queue_arguments(self, queue: QueueSpec) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": queue.name,
        }
