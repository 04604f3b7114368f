"""Extraction requests in Galaxy's HID form."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import Collection, Dataset
from waybill_shared.db.queries import among


async def ids_by_hid(
    session: AsyncSession,
    model: type[Dataset] | type[Collection],
    *,
    history_id: int,
    hids: list[int],
) -> dict[int, int]:
    """The ids of the history's datasets (or collections) with these hids, by hid."""
    found = await session.execute(
        select(model.hid, model.id).where(model.history_id == history_id, among(model.hid, hids))
    )
    return {hid: id_ for hid, id_ in found.all()}
