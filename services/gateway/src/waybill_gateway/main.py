"""Wiring only: the app, its lifespan (runtime, outbox relay, admin bootstrap), error
mapping, metrics and probes."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waybill_gateway import openapi, web_ui
from waybill_gateway.api import (
    admin,
    catalog,
    data_export,
    histories,
    history_exports,
    service_accounts,
    tasks,
    users,
    webhooks,
    workflows,
)
from waybill_gateway.auth import ApiKeys
from waybill_gateway.deps import RATE_LIMIT_FIELDS
from waybill_gateway.quotas import QuotaExceeded
from waybill_gateway.ratelimit import CREATE, READ, UPLOAD, Rate, RateLimiter
from waybill_gateway.services.catalog import ensure_admin
from waybill_gateway.services.errors import Conflict, Gone, Invalid, NotFound
from waybill_gateway.settings import GatewaySettings, get_settings
from waybill_shared import metrics
from waybill_shared.db import pg
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import is_unavailable
from waybill_shared.outbox import OutboxRelay
from waybill_shared.runtime import Runtime, freeze_startup_heap, probe_routes
from waybill_shared.storage import ObjectMissing, TooLarge
from waybill_shared.tasks.notify import TaskListener
from waybill_shared.telemetry import otlp_enabled

log = structlog.get_logger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The outbox accepts work while the broker is away, and most routes need no
    # storage: only the database takes the gateway out of its Service.
    runtime = Runtime.create(settings, needs=frozenset({"database"}))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with unit_of_work(runtime.sessions) as session:
            await ensure_admin(session, api_key=settings.admin_api_key)
        await runtime.open_db()
        await runtime.storage.ensure_bucket()
        # Keys are looked up on a pool of their own: a request that holds a connection
        # of the main pool must never wait for another one to learn who is asking.
        key_pool = await pg.create_pool(settings, max_size=2)
        api_keys = ApiKeys(
            key_pool,
            ttl_seconds=settings.api_key_cache_seconds,
            last_used_seconds=settings.api_key_last_used_seconds,
        )
        app.state.api_keys = api_keys
        relay = OutboxRelay(
            runtime.db, runtime.broker, interval=settings.outbox_relay_interval_seconds
        )
        app.state.relay = relay
        # One LISTEN connection wakes every event stream of this process.
        listener = TaskListener(
            functools.partial(
                asyncpg.connect,
                pg.dsn(settings),
                server_settings={"application_name": LISTENER_NAME},
            ),
            check_seconds=settings.task_listener_check_seconds,
        )
        app.state.task_listener = listener
        listening = asyncio.create_task(listener.run())
        _end_streams_on_exit_signal(listener)
        # The gateway accepts work while the broker is away (the outbox holds it), so
        # it connects in the background instead of refusing to start.
        connecting = asyncio.create_task(runtime.connect_broker(retry_for=float("inf")))
        relaying = asyncio.create_task(relay.run())
        recording = asyncio.create_task(api_keys.record_last_used())
        freeze_startup_heap()
        log.info("gateway started", port=settings.port)
        try:
            yield
        finally:
            listener.close_streams()
            for task in (connecting, relaying, listening, recording):
                task.cancel()
            await asyncio.gather(connecting, relaying, listening, recording, return_exceptions=True)
            await key_pool.close()
            await runtime.close()
            log.info("stopped")

    app = FastAPI(
        title="Waybill",
        version="0.1.0",
        description=openapi.DESCRIPTION,
        openapi_tags=openapi.TAGS,
        lifespan=lifespan,
    )
    openapi.install(app, settings)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.rate_limiter = rate_limiter(settings)
    app.include_router(users.router, responses=ERROR_RESPONSES)
    app.include_router(admin.router, responses=ERROR_RESPONSES)
    app.include_router(service_accounts.router, responses=ERROR_RESPONSES)
    app.include_router(catalog.router, responses=ERROR_RESPONSES)
    app.include_router(data_export.router, responses=ERROR_RESPONSES)
    app.include_router(history_exports.router, responses=ERROR_RESPONSES)
    app.include_router(histories.router, responses=ERROR_RESPONSES)
    app.include_router(tasks.router, responses=ERROR_RESPONSES)
    app.include_router(workflows.router, responses=ERROR_RESPONSES)
    app.include_router(webhooks.router, responses=ERROR_RESPONSES)
    webhooks.describe_deliveries(app)
    for route in probe_routes(runtime):
        app.add_route(route.path, route.endpoint, include_in_schema=False)
    web_ui.install(app, settings.ui_dir)
    _install_error_handlers(app)
    _install_middleware(app, settings)
    if otlp_enabled():
        FastAPIInstrumentor.instrument_app(app, excluded_urls="livez,healthz,readyz,metrics")
    return app


LISTENER_NAME = "waybill-gateway-listener"  # its application_name in pg_stat_activity


def _end_streams_on_exit_signal(listener: TaskListener) -> None:
    """uvicorn waits for open responses before it runs the lifespan's shutdown, and an
    event stream lasts until its task ends: on SIGTERM/SIGINT the streams end at once
    (clients resume on another gateway with Last-Event-ID), then uvicorn's own handler
    runs as before. Not in the main thread (a test client), there are no signals."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            loop.call_soon_threadsafe(listener.close_streams)
            previous(signum, frame)

        signal.signal(sig, handler)


class ErrorBody(BaseModel):
    detail: Any


# Declared on every route, so clients (and schemathesis) know every answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "the body could not be parsed"),
        (401, "no or invalid API key"),
        (403, "for administrators only"),
        (404, "unknown, or not yours"),
        (409, "not in a state that allows this"),
        (410, "its bytes are no longer in storage"),
        (413, "over a size limit"),
        (422, "invalid request"),
        (429, "over a rate limit or the running-exports quota (see Retry-After)"),
        (503, "a backing service is unavailable"),
    )
}


def _install_error_handlers(app: FastAPI) -> None:
    def answer(code: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(_: Request, exc: Exception) -> Response:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        return handler

    app.add_exception_handler(NotFound, answer(404))
    app.add_exception_handler(Invalid, answer(422))
    app.add_exception_handler(Conflict, answer(409))
    app.add_exception_handler(Gone, answer(410))
    app.add_exception_handler(TooLarge, answer(413))

    async def over_quota(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, QuotaExceeded)
        headers = {"Retry-After": "5"} if exc.status_code == 429 else None
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    app.add_exception_handler(QuotaExceeded, over_quota)

    async def vanished(_: Request, exc: Exception) -> Response:
        log.warning("a stored object is gone", error=str(exc))
        return JSONResponse({"detail": "its bytes are no longer in storage"}, status_code=410)

    app.add_exception_handler(ObjectMissing, vanished)

    async def unavailable(_: Request, exc: Exception) -> Response:
        log.warning("dependency unavailable", error=repr(exc))
        return JSONResponse(
            {"detail": "a backing service is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(OperationalError, unavailable)
    app.add_exception_handler(ConnectionError, unavailable)
    app.add_exception_handler(OSError, unavailable)

    async def db_error(request: Request, exc: Exception) -> Response:
        if is_unavailable(exc):
            return await unavailable(request, exc)
        log.exception("database error", exc_info=exc)
        return JSONResponse({"detail": "the request could not be stored"}, status_code=400)

    app.add_exception_handler(DBAPIError, db_error)
    app.add_exception_handler(asyncpg.PostgresError, db_error)
    app.add_exception_handler(asyncpg.InterfaceError, db_error)


def _install_middleware(app: FastAPI, settings: GatewaySettings) -> None:
    app.add_middleware(LimitsAndMetrics, settings=settings)


class LimitsAndMetrics:
    """Pure ASGI middleware (BaseHTTPMiddleware costs a task per request): refuses
    bodies over the limit, by their Content-Length before reading them or, for a
    chunked body, as soon as the bytes read pass the limit; counts requests per route."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        limit = (
            self.settings.max_upload_bytes
            if scope["path"] == "/api/files"
            else self.settings.max_request_body_bytes
        )
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            response = JSONResponse(
                {"detail": f"request body of {int(length)} bytes exceeds the limit of {limit}"},
                status_code=413,
            )
            await response(scope, receive, send)
            metrics.HTTP_REQUESTS.labels(method, _route_template(scope), "413").inc()
            return
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                rate_limit = scope.get(RATE_LIMIT_FIELDS)
                if rate_limit is not None:
                    message["headers"] = [
                        *message.get("headers", ()),
                        *((k.encode(), v.encode()) for k, v in rate_limit.items()),
                    ]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises an HTTPException met while reading the body.
                    raise HTTPException(
                        413, f"request body exceeds the limit of {limit} bytes (sent chunked)"
                    )
            return message

        started = time.perf_counter()
        try:
            await self.app(scope, limited_receive, send_wrapper)
        finally:
            route = _route_template(scope)
            metrics.HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
            metrics.HTTP_REQUESTS.labels(method, route, str(status["code"])).inc()


def rate_limiter(settings: GatewaySettings) -> RateLimiter:
    configured = {
        CREATE: Rate(settings.rate_limit_create_per_second, settings.rate_limit_create_burst),
        READ: Rate(settings.rate_limit_read_per_second, settings.rate_limit_read_burst),
        UPLOAD: Rate(settings.rate_limit_upload_per_second, settings.rate_limit_upload_burst),
    }
    return RateLimiter(
        {name: rate.per_replica(settings.gateway_replicas) for name, rate in configured.items()}
    )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


__all__ = ["create_app"]
