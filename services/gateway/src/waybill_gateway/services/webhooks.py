"""Webhook subscriptions: a user's own (administrators see everyone's); another
user's answers 404 like one that does not exist. A URL is checked when it is given:
its host must resolve, to addresses the deployment's policy admits."""

from __future__ import annotations

from waybill_gateway.services.errors import Invalid, NotFound
from waybill_shared.db.models import User
from waybill_shared.db.pg import Connection, Pool, Record
from waybill_shared.webhooks import events as kinds
from waybill_shared.webhooks import repository
from waybill_shared.webhooks.policy import AddressPolicy, Refused, vet
from waybill_shared.webhooks.secrets import new_secret


def visible_owner(user: User) -> int | None:
    """Whose subscriptions the user may see: their own, or everyone's (None)."""
    return None if user.is_admin else user.id


async def checked_url(url: str, policy: AddressPolicy) -> str:
    try:
        return (await vet(url, policy)).url
    except Refused as exc:
        raise Invalid(f"url: {exc}") from None


def checked_events(events: list[str]) -> list[str]:
    try:
        return kinds.normalize(events)
    except ValueError as exc:
        raise Invalid(f"events: {exc}") from None


async def create(
    db: Pool,
    user: User,
    *,
    url: str,
    events: list[str],
    secret: str | None,
    policy: AddressPolicy,
) -> tuple[Record, str]:
    """The subscription and its secret (made here when not given)."""
    url = await checked_url(url, policy)  # before taking a connection: it may wait on DNS
    secret = secret or new_secret()
    async with db.acquire() as conn:
        record = await repository.create_subscription(
            conn, owner_id=user.id, url=url, events=checked_events(events), secret=secret
        )
    return record, secret


async def listing(
    conn: Connection, user: User, *, limit: int, offset: int
) -> tuple[list[Record], int]:
    return await repository.list_subscriptions(
        conn, owner_id=visible_owner(user), limit=limit, offset=offset
    )


async def get(conn: Connection, user: User, webhook_id: int) -> Record:
    record = await repository.get_subscription(conn, webhook_id, owner_id=visible_owner(user))
    if record is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return record


async def update(
    db: Pool,
    user: User,
    webhook_id: int,
    *,
    url: str | None,
    events: list[str] | None,
    secret: str | None,
    enabled: bool | None,
    policy: AddressPolicy,
) -> Record:
    async with db.acquire() as conn:
        await get(conn, user, webhook_id)  # 404 before the URL is looked at
    if url is not None:
        url = await checked_url(url, policy)
    async with db.acquire() as conn:
        record = await repository.update_subscription(
            conn,
            webhook_id,
            owner_id=visible_owner(user),
            url=url,
            events=checked_events(events) if events is not None else None,
            secret=secret,
            enabled=enabled,
        )
    if record is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return record


async def delete(conn: Connection, user: User, webhook_id: int) -> None:
    if not await repository.delete_subscription(conn, webhook_id, owner_id=visible_owner(user)):
        raise NotFound(f"webhook {webhook_id} not found")


async def send_test(conn: Connection, user: User, webhook_id: int) -> Record:
    await get(conn, user, webhook_id)
    return await repository.enqueue_test(conn, webhook_id)


async def deliveries(
    conn: Connection, user: User, webhook_id: int, *, limit: int, offset: int
) -> tuple[list[Record], int]:
    await get(conn, user, webhook_id)
    return await repository.list_deliveries(conn, webhook_id, limit=limit, offset=offset)
