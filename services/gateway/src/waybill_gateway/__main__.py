import uvicorn

from waybill_gateway.settings import get_settings

settings = get_settings()
uvicorn.run(
    "waybill_gateway.main:create_app",
    factory=True,
    host=settings.host,
    port=settings.port,
    log_level="warning",
    access_log=False,
    timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
)
