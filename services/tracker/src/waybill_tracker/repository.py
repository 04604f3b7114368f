"""The tracker's own statements. (Applying status events, sweeping leases, expiring
artifacts and the storage reconcile are waybill_shared.tasks: the same rules for
every process that changes a task.)"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import InboxMessage


async def first_delivery(session: AsyncSession, *, message_id: str, message_type: str) -> bool:
    """Note the message in the inbox, in the caller's transaction; False when it was
    noted before (a redelivery, to be skipped)."""
    noted = (
        await session.execute(
            insert(InboxMessage)
            .values(message_id=message_id, message_type=message_type)
            .on_conflict_do_nothing()
            .returning(InboxMessage.message_id)
        )
    ).scalar_one_or_none()
    return noted is not None
