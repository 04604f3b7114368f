from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class TrackerSettings(WaybillSettings):
    service_name: str = "tracker"
    amqp_url: str = dev_amqp_url("waybill-tracker")
    ops_port: int = 8003
    # Status events applied per transaction, at most (also their consumer's prefetch).
    event_batch_size: int = 200


@lru_cache
def get_settings() -> TrackerSettings:
    return TrackerSettings()
