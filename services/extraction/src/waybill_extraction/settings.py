from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings


class ExtractionSettings(WaybillSettings):
    service_name: str = "extraction"
    ops_port: int = 8002


@lru_cache
def get_settings() -> ExtractionSettings:
    return ExtractionSettings()
