"""Every exchange and queue, named in one place.

Commands go to a direct exchange, events to a topic exchange. Every consumer queue is
a durable quorum queue with a delivery limit and its own dead-letter queue, so a poison
message ends up parked (with the reason) instead of looping. The broker holds them
from its definitions (messaging/definitions.py), made from this topology: services
only look them up, so none of them needs the right to create or delete one.

An event's routing key carries the principal whose task it is (`task.<principal>.
<kind>.<event>`), so the broker itself keeps each principal to its own events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Service = Literal["gateway", "export-worker", "extraction", "tracker"]
SERVICES: tuple[Service, ...] = ("gateway", "export-worker", "extraction", "tracker")


@dataclass(frozen=True)
class QueueSpec:
    name: str
    exchange: str
    routing_keys: tuple[str, ...]
    consumer: Service

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
            "export-worker",
        )

    @property
    def extraction_requests(self) -> QueueSpec:
        return QueueSpec(
            f"{self.prefix}.extraction.requests",
            self.commands_exchange,
            ("extraction.requested",),
            "extraction",
        )

    @property
    def tracker_events(self) -> QueueSpec:
        # Every principal's events: the tracker is the system of record.
        return QueueSpec(
            f"{self.prefix}.tracker.events", self.events_exchange, ("task.#",), "tracker"
        )

    @property
    def provenance_events(self) -> QueueSpec:
        return QueueSpec(
            f"{self.prefix}.provenance.events",
            self.commands_exchange,
            ("provenance.recorded",),
            "tracker",
        )

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        return (
            self.export_requests,
            self.extraction_requests,
            self.tracker_events,
            self.provenance_events,
        )

    @staticmethod
    def event_key(principal: str, kind: str, event: str) -> str:
        """The routing key of a task's event: the principal whose task it is first, so
        that a topic permission on `task.{username}.` admits only a principal's own."""
        return f"task.{principal}.{kind}.{event}"

    def client_queue_prefix(self, principal: str) -> str:
        """Named queues a principal may make for itself (besides server-named ones)."""
        return f"{self.prefix}.client.{principal}."

    def queue_arguments(self, queue: QueueSpec) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": queue.name,
        }
