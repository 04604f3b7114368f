"""Dependencies, declared once as Annotated aliases."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.auth import ApiKeys
from waybill_gateway.ratelimit import RateLimiter, route_class
from waybill_gateway.settings import GatewaySettings
from waybill_shared.db.models import User
from waybill_shared.db.pg import Connection, Pool
from waybill_shared.outbox import OutboxRelay
from waybill_shared.runtime import Runtime
from waybill_shared.storage import Storage
from waybill_shared.tasks.notify import TaskListener


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_storage(runtime: RuntimeDep) -> Storage:
    return runtime.storage


async def get_relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


async def get_task_listener(request: Request) -> TaskListener:
    listener: TaskListener = request.app.state.task_listener
    return listener


async def get_api_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.api_keys
    return keys


async def get_gateway_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One ORM session per request, committed when the handler succeeds (at the edge
    of the unit of work), rolled back when it raises."""
    async with runtime.sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_transaction(runtime: RuntimeDep) -> AsyncIterator[Connection]:
    """A connection in a transaction (asyncpg), committed when the handler succeeds,
    rolled back when it raises."""
    async with runtime.db.acquire() as conn, conn.transaction():
        yield conn


async def get_pool(runtime: RuntimeDep) -> Pool:
    """The asyncpg pool. Routes on every job's path take a connection from it with
    `async with db.acquire()`: a generator dependency costs each request more than
    its statement does (an async generator to track, an exit stack to unwind)."""
    return runtime.db


# scope="function": the commit happens before the response is sent, so whatever a
# client was told exists is visible to its next request.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
TransactionDep = Annotated[Connection, Depends(get_transaction, scope="function")]
DbDep = Annotated[Pool, Depends(get_pool)]
StorageDep = Annotated[Storage, Depends(get_storage)]
RelayDep = Annotated[OutboxRelay, Depends(get_relay)]
SettingsDep = Annotated[GatewaySettings, Depends(get_gateway_settings)]
ListenerDep = Annotated[TaskListener, Depends(get_task_listener)]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="the `id` of the last event received: a reconnection resumes after it",
    ),
]
ApiKeysDep = Annotated[ApiKeys, Depends(get_api_keys)]

# Where the rate limit's response fields wait in the request's scope for the middleware.
RATE_LIMIT_FIELDS = "waybill.rate_limit"


# Declared as security schemes (Swagger's Authorize); either header carries the key,
# the bearer token first. auto_error=False: the 401 below says what is missing.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="`Authorization: Bearer <api key>`"
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="the API key"
)


async def get_current_user(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    x_api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> User:
    key = bearer.credentials if bearer else x_api_key
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    keys: ApiKeys = request.app.state.api_keys
    holder = await keys.holder(key)
    if holder is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "Bearer"}
        )
    if holder.expired(time.time()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this API key has expired",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    if limiter.enabled:
        _limit_rate(request, limiter, holder.key_id)
    return holder.user


def _limit_rate(request: Request, limiter: RateLimiter, key_id: int) -> None:
    """429 over the key's limit for this route class; otherwise the RateLimit fields
    go on the response (added by the middleware, whatever the handler answers)."""
    klass = route_class(request.method, request.scope["path"])
    decision = limiter.take(key_id, klass, time.monotonic())
    if decision is None:
        return
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of this API key: {decision.limit} {klass} requests per "
            f"{decision.window} s; retry in {decision.retry_after} s",
            headers=decision.headers(),
        )
    request.scope[RATE_LIMIT_FIELDS] = decision.headers()


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint is for administrators")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]
