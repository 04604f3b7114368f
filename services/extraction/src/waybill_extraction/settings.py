from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class ExtractionSettings(WaybillSettings):
    service_name: str = "extraction"
    amqp_url: str = dev_amqp_url("waybill-extraction")
    ops_port: int = 8002


@lru_cache
def get_settings() -> ExtractionSettings:
    return ExtractionSettings()
