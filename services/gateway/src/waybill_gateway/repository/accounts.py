"""API keys and a user's usage."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import ApiKey, Task, User


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
