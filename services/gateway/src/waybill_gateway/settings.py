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


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
