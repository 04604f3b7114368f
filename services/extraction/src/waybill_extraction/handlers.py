"""Transport: extraction commands to the extraction service."""

from __future__ import annotations

from aio_pika.abc import AbstractIncomingMessage

from waybill_extraction.service import run_extraction
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.runtime import Runtime


class ExtractionHandlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_extraction(
        self, message: ExtractionRequested, incoming: AbstractIncomingMessage
    ) -> None:
        await run_extraction(
            runtime=self.runtime,
            request=message,
            principal=self.runtime.broker.principal_of(incoming),
            ack=incoming.ack,
        )
