"""Service accounts: the systems that publish commands straight to the broker, each as
an AMQP user of its own (see waybill_shared.principals). Each has a user of its own
too, for what it does for itself (and for uploading its files over HTTP)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.repository import service_accounts as repository
from waybill_gateway.services.accounts import remove_keys
from waybill_gateway.services.catalog import create_user
from waybill_gateway.services.errors import Conflict, NotFound
from waybill_shared.db.models import ServiceAccount
from waybill_shared.principals import ActsFor


async def create_service_account(
    session: AsyncSession,
    *,
    name: str,
    amqp_user: str,
    acts_for: ActsFor,
    user_ids: Sequence[int],
    reserved: frozenset[str],
) -> tuple[ServiceAccount, str]:
    """The account and its own user; returns the account and that user's API key.
    `reserved` are the AMQP users of Waybill's own services."""
    if amqp_user in reserved:
        raise Conflict(f"AMQP user {amqp_user!r} belongs to a Waybill service")
    if user_ids:
        found = await repository.existing_user_ids(session, user_ids)
        missing = [i for i in user_ids if i not in found]
        if missing:
            raise NotFound(f"user {missing[0]} not found")
    user, key = await create_user(session, name=name, is_admin=False)
    account = ServiceAccount(
        name=name, amqp_user=amqp_user, user_id=user.id, acts_for=acts_for, user_ids=list(user_ids)
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"AMQP user {amqp_user!r} already has a service account") from exc
    await session.refresh(account)
    return account, key


async def list_service_accounts(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[ServiceAccount], int]:
    return await repository.accounts_page(session, limit=limit, offset=offset)


async def get_service_account(session: AsyncSession, account_id: int) -> ServiceAccount:
    account = await session.get(ServiceAccount, account_id)
    if account is None:
        raise NotFound(f"service account {account_id} not found")
    return account


async def delete_service_account(session: AsyncSession, account_id: int) -> None:
    """Its AMQP user's commands are refused once the workers' cache forgets it (within
    `service_account_cache_seconds`); its own user keeps what it owns, but its API key
    stops working (its keys are deleted)."""
    account = await get_service_account(session, account_id)
    await remove_keys(session, user_id=account.user_id)
    await session.delete(account)
