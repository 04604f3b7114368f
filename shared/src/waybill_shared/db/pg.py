"""asyncpg, for the paths every task crosses (task rows, their events, the outbox,
API-key lookups): one statement costs ~25 µs of Python here against ~650 µs for an
ORM session doing the same, and a tiny export crosses them a dozen times. The
catalog and provenance stay on the SQLAlchemy ORM (db/models.py), which also
defines the schema these statements run against.

JSON columns cross this boundary as text, both ways (the same convention as
SQLAlchemy's asyncpg dialect, so a statement runs alike on a connection borrowed
from an ORM session): callers encode with `to_json` and decode with `from_json`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.settings import WaybillSettings

Connection = asyncpg.Connection
Pool = asyncpg.Pool
Record = asyncpg.Record


class _Connection(asyncpg.Connection):
    def get_reset_query(self) -> str:
        # Our statements leave no session state behind (no LISTEN, cursors, advisory
        # session locks or SETs), so a release needs no reset round trip.
        return ""


async def init_json_codecs(conn: asyncpg.Connection) -> None:
    """JSON as text both ways (see the module's docstring)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=str, decoder=str, schema="pg_catalog", format="text"
        )


def dsn(settings: WaybillSettings) -> str:
    """The SQLAlchemy URL without its driver suffix."""
    return settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_pool(settings: WaybillSettings, *, max_size: int | None = None) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn(settings),
        min_size=1,
        max_size=max_size or settings.database_pool_size,
        connection_class=_Connection,
        init=init_json_codecs,
        # A connection idle this long is closed: after a database restart, stale
        # ones are not handed out for long.
        max_inactive_connection_lifetime=60,
    )
    assert pool is not None
    return pool


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under an ORM session, inside its transaction: lifecycle
    statements then commit or roll back with the session's other changes."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def from_json(value: Any) -> Any:
    """A JSON column's value as Python (text from asyncpg; passes decoded values)."""
    if value is None or not isinstance(value, str | bytes):
        return value
    return orjson.loads(value)
