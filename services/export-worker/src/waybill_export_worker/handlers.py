"""Transport: turn a delivery into a call of the matching service function."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage

from waybill_export_worker.conversion.cpus import usable_cpus
from waybill_export_worker.history_service import run_history_export, run_history_import
from waybill_export_worker.service import run_data_export
from waybill_export_worker.settings import ExportWorkerSettings
from waybill_shared.contracts.messages import (
    DataExportRequested,
    HistoryExportRequested,
    HistoryImportRequested,
    Message,
)
from waybill_shared.messaging.broker import RejectMessage
from waybill_shared.runtime import Runtime


class ExportHandlers:
    """One queue carries batch exports, history exports and imports (by `type`)."""

    MODELS: tuple[type[Message], ...] = (
        DataExportRequested,
        HistoryExportRequested,
        HistoryImportRequested,
    )

    def __init__(self, runtime: Runtime, settings: ExportWorkerSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.heavy = asyncio.Semaphore(settings.heavy_tasks or usable_cpus())

    async def on_command(self, message: Message, incoming: AbstractIncomingMessage) -> None:
        runtime, settings = self.runtime, self.settings
        principal = runtime.broker.principal_of(incoming)
        if isinstance(message, DataExportRequested):
            await run_data_export(
                runtime=runtime,
                settings=settings,
                request=message,
                principal=principal,
                ack=incoming.ack,
                heavy=self.heavy,
            )
        elif isinstance(message, HistoryExportRequested):
            await run_history_export(
                runtime=runtime,
                settings=settings,
                request=message,
                principal=principal,
                ack=incoming.ack,
                heavy=self.heavy,
            )
        elif isinstance(message, HistoryImportRequested):
            await run_history_import(
                runtime=runtime,
                settings=settings,
                request=message,
                principal=principal,
                ack=incoming.ack,
                heavy=self.heavy,
            )
        else:
            raise RejectMessage(f"{message.message_type()} is not handled by the export worker")
