"""Async engine and session factory for the ORM; commit happens at the edge of a unit
of work."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from waybill_shared.settings import WaybillSettings

# A pooled connection idle longer than this is pinged before use (see below).
IDLE_PING_SECONDS = 10.0


def create_engine(settings: WaybillSettings) -> AsyncEngine:
    engine = create_async_engine(settings.database_url, pool_size=settings.database_pool_size)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle: a
    ping on every checkout (pool_pre_ping) is a round trip per unit of work, 7-8 % of
    every service's CPU under load. A busy connection that breaks is invalidated by
    SQLAlchemy on the error itself."""

    @event.listens_for(engine.sync_engine, "checkin")
    def remember(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            # The server closed it while it sat in the pool (a database restart):
            # asyncpg knows without a round trip. The pool retries with a fresh one.
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and retries with a fresh one.
            raise DisconnectionError("idle connection is gone") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
