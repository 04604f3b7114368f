"""Wiring only: the runtime, the subscription, the process entry point."""

from __future__ import annotations

import asyncio
from typing import Any

from waybill_export_worker.conversion.cpus import cap_engine_threads
from waybill_export_worker.handlers import ExportHandlers
from waybill_export_worker.settings import ExportWorkerSettings, get_settings
from waybill_shared.runtime import Runtime, serve


async def start(runtime: Runtime) -> list[asyncio.Task[Any]]:
    settings = runtime.settings
    assert isinstance(settings, ExportWorkerSettings)
    handlers = ExportHandlers(runtime, settings)
    await runtime.broker.consume(
        runtime.topology.export_requests,
        {model.message_type(): model for model in ExportHandlers.MODELS},
        handlers.on_command,
    )
    return []


def main() -> None:
    cap_engine_threads()
    serve(Runtime.create(get_settings()), start)
