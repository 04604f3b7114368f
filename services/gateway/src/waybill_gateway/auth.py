"""Who is asking: API keys, looked up by their digest and remembered for a moment.

A create or a GET would otherwise spend a database round trip on the key alone. The
cache keeps an answer for `api_key_cache_seconds` (1 s by default), so a key that is
rotated, revoked or deleted stops working within that time on every replica."""

from __future__ import annotations

import time
from dataclasses import dataclass

from waybill_shared.db.models import User
from waybill_shared.db.pg import Pool
from waybill_shared.security import hash_api_key

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    user: User
    until: float


class ApiKeys:
    def __init__(self, pool: Pool, *, ttl_seconds: float) -> None:
        self.pool = pool
        self.ttl = ttl_seconds
        self._cache: dict[str, _Entry] = {}

    async def user(self, key: str) -> User | None:
        """The key's user (detached from any session), or None for an unknown key."""
        digest = hash_api_key(key)
        now = time.monotonic()
        entry = self._cache.get(digest)
        if entry is not None and entry.until > now:
            return entry.user
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, name, is_admin, created_at FROM users WHERE api_key_hash = $1",
                digest,
            )
        if row is None:
            self._cache.pop(digest, None)
            return None
        user = User(id=row["id"], name=row["name"], is_admin=row["is_admin"], api_key_hash=digest)
        user.created_at = row["created_at"]
        if len(self._cache) >= MAX_ENTRIES:
            self._cache = {d: e for d, e in self._cache.items() if e.until > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
        self._cache[digest] = _Entry(user, now + self.ttl)
        return user

    def forget(self) -> None:
        self._cache.clear()
