"""Settings shared by every service: one base class, subclassed per service.

Every value has a default that works on a fresh development machine (the local
stack of `make run`); production refuses to start with the development secret.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from waybill_shared.webhooks.policy import AddressPolicy

DEV_ADMIN_API_KEY = "waybill-dev-admin-key"
# The password of every Waybill AMQP user on a development machine (`make run` creates
# them with it); refused in production.
DEV_AMQP_PASSWORD = "waybill-dev"
DEV_AMQP_VHOST = "waybill"


def dev_amqp_url(user: str) -> str:
    """A service's broker URL on a development machine: its own user, Waybill's vhost."""
    return f"amqp://{user}:{DEV_AMQP_PASSWORD}@127.0.0.1:5672/{DEV_AMQP_VHOST}"


def amqp_user_of(url: str) -> str:
    """The user an AMQP URL logs in as (guest when it names none, as clients do)."""
    return unquote(urlsplit(url).username or "guest")


class WaybillSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAYBILL_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    service_name: str = "waybill"
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"

    database_url: str = "postgresql+asyncpg://waybill:waybill@127.0.0.1:5432/waybill"
    database_pool_size: int = 10

    # Each service logs in as its own AMQP user (see messaging/definitions.py for the
    # permissions each gets); its subclass sets the development default.
    amqp_url: str = dev_amqp_url("waybill-gateway")
    # The AMQP users of Waybill's own services. Commands they publish act for any user
    # (the gateway checked the HTTP caller; the tracker re-dispatches accepted tasks);
    # every other publisher is a service account (see waybill_shared.principals).
    amqp_gateway_user: str = "waybill-gateway"
    amqp_export_worker_user: str = "waybill-export-worker"
    amqp_extraction_user: str = "waybill-extraction"
    amqp_tracker_user: str = "waybill-tracker"
    # How long a worker remembers a service account (a deleted or changed account is
    # in force everywhere within this time).
    service_account_cache_seconds: float = 5.0
    # Every exchange and queue name starts with this, so several deployments (or a test
    # run) can share one broker without seeing each other's messages.
    amqp_prefix: str = "waybill"
    amqp_delivery_limit: int = 5
    # The AMQP heartbeat timeout negotiated with the broker. A connection that goes
    # silent (a partition, a black-holed route) is declared dead after three missed
    # heartbeats, 3 x (this + 1) s (aiormq's rule), and then reconnected.
    amqp_heartbeat_seconds: int = 15
    amqp_prefetch: int = 4

    s3_endpoint: str = "127.0.0.1:9000"
    s3_public_endpoint: str | None = None  # host:port clients use; signs download URLs
    s3_access_key: str = "waybill"
    s3_secret_key: str = "waybill-secret"
    s3_bucket: str = "waybill"
    s3_region: str = "us-east-1"
    s3_secure: bool = False

    admin_api_key: str = DEV_ADMIN_API_KEY

    # History exports: short-term downloads live this long after they finish;
    # long-term exports go only under these S3 prefixes (default: s3://<bucket>/remote/).
    short_term_export_ttl_hours: int = 24
    remote_export_prefixes: list[str] = []

    # Leases: a worker owns a task while it heartbeats; the tracker re-dispatches a task
    # whose lease ran out (the worker died) up to max_attempts, then fails it.
    lease_seconds: float = 30.0
    # How often a worker extends the leases it holds and looks for cancels.
    lease_poll_seconds: float = 0.25
    max_attempts: int = 3
    sweep_interval_seconds: float = 5.0
    cleanup_interval_seconds: float = 300.0
    # The tracker's storage reconcile: one listing of the artifact and file prefixes
    # against the database (a page per thousand objects), not a HEAD per object. Its
    # cost grows with what is stored, so it runs as seldom as the TTL cleanup.
    reconcile_interval_seconds: float = 300.0
    outbox_relay_interval_seconds: float = 1.0

    shutdown_grace_seconds: float = 30.0
    ops_port: int = 8001
    work_dir: str | None = None  # scratch space for workers; system temp dir when unset

    # Limits (issue: nobody gets in where they don't belong)
    max_upload_bytes: int = 10 * 1024**3
    max_files_per_export: int = 1000
    max_page_size: int = 500
    download_url_seconds: int = 3600

    # Webhooks go to public addresses only, and to these networks (CIDRs) besides;
    # loopback too in development. Checked when a subscription is made and again at
    # every delivery (see waybill_shared.webhooks.policy).
    webhook_allowed_networks: list[str] = []

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> WaybillSettings:
        if self.environment == "production" and self.admin_api_key == DEV_ADMIN_API_KEY:
            raise ValueError("WAYBILL_ADMIN_API_KEY must be set in production")
        if self.environment == "production" and urlsplit(self.amqp_url).password in (
            DEV_AMQP_PASSWORD,
            "guest",
        ):
            raise ValueError(
                "WAYBILL_AMQP_URL must carry this service's own password in production"
            )
        return self

    @property
    def amqp_service_users(self) -> frozenset[str]:
        return frozenset(
            {
                self.amqp_gateway_user,
                self.amqp_export_worker_user,
                self.amqp_extraction_user,
                self.amqp_tracker_user,
            }
        )

    def webhook_policy(self) -> AddressPolicy:
        return AddressPolicy.of(
            self.webhook_allowed_networks, allow_loopback=self.environment == "development"
        )

    def allowed_remote_prefixes(self) -> list[str]:
        return self.remote_export_prefixes or [f"s3://{self.s3_bucket}/remote/"]

    def remote_target_allowed(self, uri: str | None) -> bool:
        return bool(uri) and any(str(uri).startswith(p) for p in self.allowed_remote_prefixes())


@lru_cache
def get_settings() -> WaybillSettings:
    return WaybillSettings()
