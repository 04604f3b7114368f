"""Service accounts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import ServiceAccount, User


async def existing_user_ids(session: AsyncSession, user_ids: Sequence[int]) -> set[int]:
    return set((await session.execute(select(User.id).where(User.id.in_(user_ids)))).scalars())


async def accounts_page(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[ServiceAccount], int]:
    accounts = (
        await session.execute(
            select(ServiceAccount).order_by(ServiceAccount.id).limit(limit).offset(offset)
        )
    ).scalars()
    total = await session.scalar(select(func.count()).select_from(ServiceAccount))
    return list(accounts), int(total or 0)
