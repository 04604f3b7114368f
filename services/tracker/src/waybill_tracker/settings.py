from __future__ import annotations

from functools import lru_cache

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class TrackerSettings(WaybillSettings):
    service_name: str = "tracker"
    amqp_url: str = dev_amqp_url("waybill-tracker")
    ops_port: int = 8003
    # Status events applied per transaction, at most (also their consumer's prefetch).
    event_batch_size: int = 200

    # Webhook deliveries: looked for this often, this many at a time, each attempt
    # given this long; a failed one is tried again after a random wait of up to
    # base * 2^(attempt-1) seconds (at most max), until `window` seconds after it was
    # made. A subscription whose attempts fail this many times in a row is disabled.
    webhook_poll_seconds: float = 0.5
    webhook_batch_size: int = 50
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_retry_window_seconds: float = 24 * 3600.0
    webhook_disable_after_failures: int = 100


@lru_cache
def get_settings() -> TrackerSettings:
    return TrackerSettings()
