"""A user's API keys, usage and quotas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.quotas import Quotas
from waybill_gateway.repository import accounts as repository
from waybill_gateway.schemas import QuotasUpdate, QuotaUse, UsageOut
from waybill_gateway.services.errors import Conflict, Invalid, NotFound
from waybill_shared.clock import utcnow
from waybill_shared.db.models import ApiKey, User
from waybill_shared.security import hash_api_key, new_api_key

PREFIX_CHARS = 8  # "wb_" and five characters of the random part: tells keys apart
ADMIN_KEY_NAME = "configured"  # the admin's key from WAYBILL_ADMIN_API_KEY


def key_record(user_id: int, name: str, key: str, expires_at: datetime | None = None) -> ApiKey:
    return ApiKey(
        user_id=user_id,
        name=name,
        key_hash=hash_api_key(key),
        prefix=key[:PREFIX_CHARS],
        expires_at=expires_at,
    )


async def create_key(
    session: AsyncSession, *, user_id: int, name: str, expires_at: datetime | None
) -> tuple[ApiKey, str]:
    """A new key for the user; the key itself is returned this once."""
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid(f"expires_at {expires_at.isoformat()} is in the past")
    key = new_api_key()
    record = key_record(user_id, name, key, expires_at)
    session.add(record)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"you already have a key named {name!r}") from exc
    await session.refresh(record)
    return record, key


async def list_keys(
    session: AsyncSession, *, user_id: int, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    return await repository.keys_page(session, user_id=user_id, limit=limit, offset=offset)


async def get_key(session: AsyncSession, *, user_id: int, key_id: int) -> ApiKey:
    record = await session.get(ApiKey, key_id)
    if record is None or record.user_id != user_id:
        raise NotFound(f"API key {key_id} not found")
    return record


async def revoke_key(session: AsyncSession, *, user_id: int, key_id: int) -> None:
    """Delete the key; another user's key is NotFound, like one that does not exist."""
    if not await repository.delete_key(session, user_id=user_id, key_id=key_id):
        raise NotFound(f"API key {key_id} not found")


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def usage(session: AsyncSession, *, user: User, quotas: Quotas) -> UsageOut:
    stored = await repository.stored_bytes(session, user.id)
    running = await repository.running_exports(session, user.id)
    return UsageOut(
        stored_bytes=QuotaUse(used=stored, limit=quotas.stored_bytes or None),
        running_exports=QuotaUse(used=running, limit=quotas.running_exports or None),
        files_per_export=quotas.files_per_export or None,
    )


async def set_quotas(session: AsyncSession, *, user_id: int, quotas: QuotasUpdate) -> User:
    user = await get_user(session, user_id)
    user.quota_stored_bytes = quotas.stored_bytes
    user.quota_running_exports = quotas.running_exports
    user.quota_files_per_export = quotas.files_per_export
    return user


async def remove_keys(session: AsyncSession, *, user_id: int) -> None:
    await repository.delete_keys(session, user_id=user_id)
