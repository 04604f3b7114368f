"""Principals: who may publish commands straight to the broker, and for whom.

A command's principal is the AMQP user that published it, proven by the broker (the
`user_id` property must equal the connection's login; see Broker.principal_of). Waybill's
own services act for any user: the gateway has checked its HTTP caller, the tracker
re-dispatches tasks that were accepted. Any other principal must be a service account,
kept by administrators (POST /api/service-accounts), that may act for itself only, for
a list of users, or for any user. A command that fails this check is refused before
anything is read or written for it.

Workers look service accounts up through a short cache (one round trip per account per
`service_account_cache_seconds`, none per command), as the gateway does for API keys.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from waybill_shared.db.pg import Pool

ActsFor = Literal["self", "users", "any"]
# An AMQP user that can be a principal: one word of a routing key (no dots, no
# wildcards), and nothing a regex would read as an operator.
PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_CACHED = 10_000


@dataclass(frozen=True)
class ServiceAccount:
    amqp_user: str
    user_id: int  # the account's own user: "self"
    acts_for: ActsFor
    user_ids: frozenset[int] = frozenset()

    def may_act_for(self, owner_id: int) -> bool:
        if self.acts_for == "any":
            return True
        if self.acts_for == "users" and owner_id in self.user_ids:
            return True
        return owner_id == self.user_id


def refusal(principal: str | None, account: ServiceAccount | None, owner_id: int) -> str | None:
    """Why `principal` may not act for user `owner_id` (None when it may)."""
    if principal is None:
        return "the message has no user_id: a command must say which AMQP user publishes it"
    if account is None:
        return f"AMQP user {principal!r} is not a service account of this Waybill"
    if not account.may_act_for(owner_id):
        return f"service account {principal!r} may not act for user {owner_id}"
    return None


@dataclass(frozen=True)
class _Entry:
    account: ServiceAccount | None
    until: float


class Principals:
    """The admission check of every command, as a worker makes it."""

    def __init__(self, pool: Pool, *, service_users: frozenset[str], ttl_seconds: float) -> None:
        self.pool = pool
        self.service_users = service_users
        self.ttl = ttl_seconds
        self._cache: dict[str, _Entry] = {}

    def is_service(self, principal: str | None) -> bool:
        """One of Waybill's own services (which act for any user)."""
        return principal in self.service_users

    async def refusal(self, principal: str | None, owner_id: int) -> str | None:
        """Why the principal may not act for `owner_id`, or None when it may. Waybill's
        own services cost nothing; a service account a dictionary lookup, but for one
        round trip per account and cache period."""
        if self.is_service(principal):
            return None
        account = await self.account(principal) if principal is not None else None
        return refusal(principal, account, owner_id)

    async def account(self, amqp_user: str) -> ServiceAccount | None:
        now = time.monotonic()
        entry = self._cache.get(amqp_user)
        if entry is not None and entry.until > now:
            return entry.account
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT user_id, acts_for, user_ids FROM service_accounts WHERE amqp_user = $1",
                amqp_user,
            )
        account = (
            ServiceAccount(amqp_user, row["user_id"], row["acts_for"], frozenset(row["user_ids"]))
            if row is not None
            else None
        )
        if len(self._cache) >= MAX_CACHED:  # a flood of unknown names must not grow it
            self._cache.clear()
        self._cache[amqp_user] = _Entry(account, now + self.ttl)
        return account
