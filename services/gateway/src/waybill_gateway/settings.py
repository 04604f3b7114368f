from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from waybill_shared.settings import WaybillSettings, dev_amqp_url


class GatewaySettings(WaybillSettings):
    service_name: str = "gateway"
    amqp_url: str = dev_amqp_url("waybill-gateway")
    host: str = "0.0.0.0"
    port: int = 8000
    max_request_body_bytes: int = 1024 * 1024  # JSON bodies; uploads have their own limit
    # How long an API key's lookup is remembered (a revoked key works this long at most).
    api_key_cache_seconds: float = 1.0
    # An event stream with nothing to say sends a comment this often (proxies close
    # idle connections).
    stream_keepalive_seconds: float = 15.0
    # How often the one LISTEN connection that wakes the streams is checked.
    task_listener_check_seconds: float = 5.0
    # The built web UI (services/gateway/ui, `npm run build`), served at /.
    ui_dir: Path = Path(__file__).resolve().parents[2] / "ui" / "dist"

    # When keys were last used is written every this often (one statement for all).
    api_key_last_used_seconds: float = 60.0

    # Rate limits per API key and route class (read: GET; upload: POST /api/files;
    # create: every other POST, PUT, PATCH, DELETE): tokens per second and the burst a
    # full bucket allows; 0 per second: no limit. Each replica holds the rate divided by
    # `gateway_replicas`, so set it to the number of gateway replicas.
    rate_limit_read_per_second: float = 200.0
    rate_limit_read_burst: int = 400
    rate_limit_create_per_second: float = 100.0
    rate_limit_create_burst: int = 200
    rate_limit_upload_per_second: float = 10.0
    rate_limit_upload_burst: int = 50
    gateway_replicas: int = 1

    # Quotas per user, unless an administrator set the user's own; 0: none. (Files per
    # export: `max_files_per_export`.)
    quota_stored_bytes: int = 100 * 1024**3
    quota_running_exports: int = 1000


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
