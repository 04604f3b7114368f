from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class ExportWorkerSettings(WaybillSettings):
    service_name: str = "export-worker"
    amqp_url: str = dev_amqp_url("waybill-export-worker")
    ops_port: int = 8001
    # Progress events inside a large file: at most one per interval.
    progress_interval_seconds: float = 0.5
    # Commands taken at once: a small export spends most of its time waiting (on S3,
    # the database, the broker's confirms), so many run together ...
    amqp_prefetch: int = 16
    # ... but conversions, large packages and history archives (CPU and up to a few
    # hundred MB each) run at most this many at a time; unset: the usable CPUs.
    heavy_tasks: int | None = None
    # An export of files no larger than this, packed as they are (zip), is small.
    small_export_bytes: int = 16 * 1024 * 1024


@lru_cache
def get_settings() -> ExportWorkerSettings:
    return ExportWorkerSettings()
