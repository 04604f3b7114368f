"""Wiring only: the subscription, the start-up backfill and the process entry point."""

from __future__ import annotations

import asyncio
from typing import Any

from waybill_extraction.handlers import ExtractionHandlers
from waybill_extraction.service import add_missing_format2
from waybill_extraction.settings import get_settings
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.runtime import Runtime, serve


async def start(runtime: Runtime) -> list[asyncio.Task[Any]]:
    await runtime.broker.consume(
        runtime.topology.extraction_requests,
        {ExtractionRequested.message_type(): ExtractionRequested},
        ExtractionHandlers(runtime).on_extraction,
    )
    return [asyncio.create_task(add_missing_format2(runtime))]


def main() -> None:
    serve(Runtime.create(get_settings()), start)
