from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class ExportWorkerSettings(WaybillSettings):
    service_name: str = "export-worker"
    amqp_url: str = dev_amqp_url("waybill-export-worker")
    ops_port: int = 8001
    # Progress events inside a large file: at most one per interval.
    progress_interval_seconds: float = 0.5


@lru_cache
def get_settings() -> ExportWorkerSettings:
    return ExportWorkerSettings()
