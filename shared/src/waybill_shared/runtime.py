"""What every service process has: settings, logging, telemetry, the database, the
broker and storage, probes and metrics, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
import uvicorn
import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from waybill_shared import metrics
from waybill_shared.db import pg
from waybill_shared.db.session import create_engine, create_sessionmaker
from waybill_shared.logging import configure_logging
from waybill_shared.messaging.broker import Broker
from waybill_shared.messaging.topology import Topology
from waybill_shared.principals import Principals
from waybill_shared.settings import WaybillSettings
from waybill_shared.storage import Storage
from waybill_shared.tasks.lease import LeaseKeeper
from waybill_shared.telemetry import configure_telemetry

log = structlog.get_logger(__name__)

DEPENDENCIES = frozenset({"database", "broker", "storage"})


@dataclass
class Runtime:
    settings: WaybillSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: Broker
    storage: Storage
    # What the service cannot serve without: /readyz fails without any of them; the
    # others are reported as degraded (the gateway's outbox holds commands while the
    # broker is away, so it needs only the database; a worker needs all three).
    needs: frozenset[str] = DEPENDENCIES
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    _db: pg.Pool | None = None
    _leases: LeaseKeeper | None = None
    _principals: Principals | None = None

    @property
    def topology(self) -> Topology:
        return self.broker.topology

    @property
    def db(self) -> pg.Pool:
        """asyncpg, for the task lifecycle's statements (see db/pg.py)."""
        if self._db is None:
            raise RuntimeError("the database pool is not open: await runtime.open_db()")
        return self._db

    @property
    def leases(self) -> LeaseKeeper:
        """The keeper of the leases this worker holds."""
        if self._leases is None:
            self._leases = LeaseKeeper(
                self.db,
                worker_id=self.worker_id,
                lease_seconds=self.settings.lease_seconds,
                poll_seconds=self.settings.lease_poll_seconds,
            )
        return self._leases

    @property
    def principals(self) -> Principals:
        """Who may publish commands, and for whom (with its cache of service accounts)."""
        if self._principals is None:
            self._principals = Principals(
                self.db,
                service_users=self.settings.amqp_service_users,
                ttl_seconds=self.settings.service_account_cache_seconds,
            )
        return self._principals

    async def open_db(self, *, retry_for: float = 60.0) -> None:
        """Open the asyncpg pool, retrying while the database starts."""
        deadline = asyncio.get_running_loop().time() + retry_for
        while self._db is None:
            try:
                self._db = await pg.create_pool(self.settings)
            except Exception as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("database not reachable yet", error=repr(exc))
                await asyncio.sleep(1.0)

    @classmethod
    def create(cls, settings: WaybillSettings, *, needs: frozenset[str] = DEPENDENCIES) -> Runtime:
        configure_logging(settings)
        configure_telemetry(settings.service_name)
        engine = create_engine(settings)
        return cls(
            settings=settings,
            needs=needs,
            engine=engine,
            sessions=create_sessionmaker(engine),
            broker=Broker(
                settings.amqp_url,
                Topology(settings.amqp_prefix, settings.amqp_delivery_limit),
                prefetch=settings.amqp_prefetch,
                service_users=settings.amqp_service_users,
                heartbeat=settings.amqp_heartbeat_seconds,
            ),
            storage=Storage(settings),
        )

    async def connect_broker(self, *, retry_for: float = 60.0) -> None:
        """Connect, retrying while the broker starts (compose/k8s start order)."""
        deadline = asyncio.get_running_loop().time() + retry_for
        if self.broker.username not in self.settings.amqp_service_users:
            log.warning(
                "this service's AMQP user is none of WAYBILL_AMQP_*_USER: the others will "
                "take its messages for a stranger's",
                amqp_user=self.broker.username,
            )
        while True:
            try:
                await self.broker.connect()
                return
            except Exception as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("broker not reachable yet", error=repr(exc))
                await asyncio.sleep(1.0)

    async def readiness(self) -> Readiness:
        """Probe every backing service at once (each within 3 s); record the answer in
        the `waybill_dependency_up` and `waybill_degraded` gauges."""
        checks: dict[str, str] = {}

        async def check(name: str, probe: Callable[[], Awaitable[Any]]) -> None:
            try:
                await asyncio.wait_for(probe(), timeout=3)
                checks[name] = "ok"
            except Exception as exc:
                state = "unavailable" if name in self.needs else "degraded"
                checks[name] = f"{state}: {exc!r}"[:200]

        async def db() -> None:
            async with self.db.acquire() as conn:
                await conn.fetchval("SELECT 1")

        async def broker() -> None:
            if not self.broker.is_connected:
                raise ConnectionError("not connected")

        await asyncio.gather(
            check("database", db), check("broker", broker), check("storage", self.storage.ping)
        )
        readiness = Readiness({name: checks[name] for name in sorted(checks)}, self.needs)
        for name, answer in checks.items():
            metrics.DEPENDENCY_UP.labels(dependency=name).set(answer == "ok")
        metrics.DEGRADED.set(readiness.status == "degraded")
        return readiness

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.close()
        await self.broker.close()
        if self._db is not None:
            await self._db.close()
        await self.engine.dispose()


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # dependency: "ok", "unavailable: why" or "degraded: why"
    needs: frozenset[str]

    @property
    def ready(self) -> bool:
        return all(self.checks[name] == "ok" for name in self.needs if name in self.checks)

    @property
    def status(self) -> str:
        if not self.ready:
            return "unavailable"
        return "ok" if all(v == "ok" for v in self.checks.values()) else "degraded"

    def body(self) -> dict[str, Any]:
        return {"ready": self.ready, "status": self.status, "checks": self.checks}


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, classes, the app: ~160,000
    objects in the gateway) out of the garbage collector's reach. A full collection
    walked them all, ~35 ms here: a stall in some request's latency every few
    thousand requests."""
    gc.collect()
    gc.freeze()


def probe_routes(runtime: Runtime) -> list[Route]:
    async def livez(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        readiness = await runtime.readiness()
        return JSONResponse(readiness.body(), status_code=200 if readiness.ready else 503)

    async def metrics_page(_: Request) -> Response:
        # The dependency gauges as of this scrape, not of the last probe.
        await runtime.readiness()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/livez", livez),
        Route("/healthz", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics_page),
    ]


class _OpsServer(uvicorn.Server):
    """The probe server inside a worker: the worker, not uvicorn, owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_worker(
    runtime: Runtime,
    start: Callable[[Runtime], Awaitable[list[asyncio.Task[Any]]]],
) -> None:
    """Run a worker: ops server on the side port, `start` subscribes and returns its
    background tasks; SIGTERM stops consuming, drains in-flight work within the grace
    period, then closes connections."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    ops = _OpsServer(
        uvicorn.Config(
            Starlette(routes=probe_routes(runtime)),
            host="0.0.0.0",
            port=runtime.settings.ops_port,
            log_level="warning",
            lifespan="off",
        )
    )
    ops_task = asyncio.create_task(ops.serve())
    await runtime.open_db()
    await runtime.storage.ensure_bucket()
    await runtime.connect_broker()
    runtime.broker.on_connection_lost(lambda: runtime.leases.give_up_all("lost the broker"))
    background = await start(runtime)
    freeze_startup_heap()
    log.info("service started", worker_id=runtime.worker_id, ops_port=runtime.settings.ops_port)
    await stop.wait()
    log.info("stopping: draining in-flight work", grace=runtime.settings.shutdown_grace_seconds)
    await runtime.broker.stop_consuming(runtime.settings.shutdown_grace_seconds)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    ops.should_exit = True
    await ops_task
    await runtime.close()
    log.info("stopped")


def serve(runtime: Runtime, start: Callable[[Runtime], Awaitable[list[asyncio.Task[Any]]]]) -> None:
    """A worker process's entry point, on uvloop (a cheaper event loop per message)."""
    uvloop.run(run_worker(runtime, start))
