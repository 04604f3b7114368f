"""Wiring only: the subscription and the process entry point."""

from __future__ import annotations

import asyncio
from typing import Any

from waybill_extraction.handlers import ExtractionHandlers
from waybill_extraction.settings import get_settings
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.runtime import Runtime, serve


async def start(runtime: Runtime) -> list[asyncio.Task[Any]]:
    await runtime.broker.consume(
        runtime.topology.extraction_requests,
        {ExtractionRequested.message_type(): ExtractionRequested},
        ExtractionHandlers(runtime).on_extraction,
    )
    return []


def main() -> None:
    serve(Runtime.create(get_settings()), start)
