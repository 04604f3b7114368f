"""Wiring only: the event subscription, the schedules, the process entry point."""

from __future__ import annotations

import asyncio
from typing import Any

from waybill_shared.contracts.messages import ProvenanceRecorded, TaskEvent
from waybill_shared.outbox import OutboxRelay
from waybill_shared.runtime import Runtime, serve
from waybill_tracker.handlers import TrackerHandlers
from waybill_tracker.service import LeaseSweeper, cleanup_expired, every, reconcile
from waybill_tracker.settings import TrackerSettings, get_settings
from waybill_tracker.webhooks import Deliveries


async def start(runtime: Runtime) -> list[asyncio.Task[Any]]:
    settings = runtime.settings
    assert isinstance(settings, TrackerSettings)
    relay = OutboxRelay(runtime.db, runtime.broker, interval=settings.outbox_relay_interval_seconds)
    handlers = TrackerHandlers(runtime)
    await runtime.broker.consume_batches(
        runtime.topology.tracker_events,
        {TaskEvent.message_type(): TaskEvent},
        handlers.on_task_events,
        max_batch=settings.event_batch_size,
    )
    await runtime.broker.consume(
        runtime.topology.provenance_events,
        {ProvenanceRecorded.message_type(): ProvenanceRecorded},
        handlers.on_provenance,
    )
    return [
        asyncio.create_task(relay.run()),
        asyncio.create_task(
            every(settings.sweep_interval_seconds, LeaseSweeper(runtime, relay), "leases")
        ),
        asyncio.create_task(
            every(settings.cleanup_interval_seconds, lambda: cleanup_expired(runtime), "cleanup")
        ),
        asyncio.create_task(
            every(settings.reconcile_interval_seconds, lambda: reconcile(runtime), "reconcile")
        ),
        asyncio.create_task(Deliveries(runtime, settings).run()),
    ]


def main() -> None:
    serve(Runtime.create(get_settings()), start)
