"""API keys and a user's usage. The key lookup of every request and the last-used
write are plain SQL on asyncpg (on every request's path); the rest is ORM."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import ApiKey, Task, User
from waybill_shared.db.pg import Connection, Record

# What a request needs of its user (auth.user_of makes the User of them).
USER_COLUMNS = (
    "u.id, u.name, u.is_admin, u.created_at, u.quota_stored_bytes, "
    "u.quota_running_exports, u.quota_files_per_export"
)


async def keys_page(
    session: AsyncSession, *, user_id: int, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    total = await session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)
    )
    keys = await session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id)
        .order_by(ApiKey.id)
        .limit(limit)
        .offset(offset)
    )
    return list(keys), int(total or 0)


async def delete_key(session: AsyncSession, *, user_id: int, key_id: int) -> bool:
    """False when the user has no such key."""
    deleted = await session.execute(
        delete(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id).returning(ApiKey.id)
    )
    return deleted.first() is not None


async def delete_keys(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(delete(ApiKey).where(ApiKey.user_id == user_id))


async def stored_bytes(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(User.stored_bytes).where(User.id == user_id)) or 0)


async def running_exports(session: AsyncSession, user_id: int) -> int:
    """The user's data exports pending or running."""
    running = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.owner_id == user_id,
            Task.kind == "data_export",
            Task.status.in_(("pending", "running")),
        )
    )
    return int(running or 0)


async def key_and_user(conn: Connection, key_hash: str) -> Record | None:
    """The key with this hash (key_id, expires_at) and its user (USER_COLUMNS)."""
    row: Record | None = await conn.fetchrow(
        f"""SELECT {USER_COLUMNS}, k.id AS key_id, k.expires_at
            FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1""",
        key_hash,
    )
    return row


async def write_last_used(conn: Connection, used: dict[int, float]) -> None:
    """When each key was last used (seconds since the epoch, by key id), never moved back."""
    await conn.execute(
        """UPDATE api_keys k SET last_used_at = v.at
           FROM unnest($1::int[], $2::timestamptz[]) AS v(id, at)
           WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)""",
        list(used),
        [datetime.fromtimestamp(t, UTC) for t in used.values()],
    )
