"""Who is asking: API keys, looked up by their digest and remembered for a moment.

A create or a GET would otherwise spend a database round trip on the key alone. The
cache keeps an answer for `api_key_cache_seconds` (1 s by default), so a key that is
revoked or deleted stops working within that time on every replica (at once on the
replica that revoked it). An expiry is compared with the clock on every request, so
an expired key is refused at once, cached or not.

When a key was last used is noted in memory on each request and written for every
key used meanwhile in one statement every `api_key_last_used_seconds` (60 s): at most
one write per key per interval per replica, none on the request's path."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from waybill_gateway.repository import accounts as repository
from waybill_shared.db.models import User
from waybill_shared.db.pg import Pool, Record
from waybill_shared.security import hash_api_key

log = structlog.get_logger(__name__)

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class KeyHolder:
    """The user a key belongs to, and which of the user's keys it is."""

    user: User
    key_id: int
    expires_at: float | None  # seconds since the epoch

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class _Entry:
    holder: KeyHolder
    until: float


def user_of(row: Record) -> User:
    """A detached User from a row with repository.accounts.USER_COLUMNS."""
    user = User(
        id=row["id"],
        name=row["name"],
        is_admin=row["is_admin"],
        quota_stored_bytes=row["quota_stored_bytes"],
        quota_running_exports=row["quota_running_exports"],
        quota_files_per_export=row["quota_files_per_export"],
    )
    user.created_at = row["created_at"]
    return user


class ApiKeys:
    def __init__(self, pool: Pool, *, ttl_seconds: float, last_used_seconds: float) -> None:
        self.pool = pool
        self.ttl = ttl_seconds
        self.last_used_seconds = last_used_seconds
        self._cache: dict[str, _Entry] = {}
        self._used: dict[int, float] = {}  # key id -> when (epoch seconds), not yet written

    async def holder(self, key: str) -> KeyHolder | None:
        """The key's holder, or None for an unknown (or revoked) key. The caller checks
        `expired`; only a use of a key that has not expired is noted."""
        digest = hash_api_key(key)
        now = time.monotonic()
        entry = self._cache.get(digest)
        if entry is None or entry.until <= now:
            entry = await self._load(digest, now)
            if entry is None:
                return None
        holder = entry.holder
        wall = time.time()
        if not holder.expired(wall):
            self._used[holder.key_id] = wall
        return holder

    async def _load(self, digest: str, now: float) -> _Entry | None:
        async with self.pool.acquire() as conn:
            row = await repository.key_and_user(conn, digest)
        if row is None:
            self._cache.pop(digest, None)
            return None
        expires = row["expires_at"]
        holder = KeyHolder(
            user_of(row), row["key_id"], expires.timestamp() if expires is not None else None
        )
        if len(self._cache) >= MAX_ENTRIES:
            self._cache = {d: e for d, e in self._cache.items() if e.until > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
        entry = _Entry(holder, now + self.ttl)
        self._cache[digest] = entry
        return entry

    def forget(self, *, key_ids: set[int] | None = None, user_id: int | None = None) -> None:
        """Drop these keys, or every key of this user, from this replica's cache (every
        key when neither is given)."""
        if key_ids is None and user_id is None:
            self._cache.clear()
            return
        self._cache = {
            d: e
            for d, e in self._cache.items()
            if e.holder.key_id not in (key_ids or ()) and e.holder.user.id != user_id
        }

    async def write_last_used(self) -> None:
        """One statement for every key used since the last write."""
        used, self._used = self._used, {}
        if not used:
            return
        try:
            async with self.pool.acquire() as conn:
                await repository.write_last_used(conn, used)
        except Exception as exc:  # the database away: keep them for the next round
            log.warning("could not record when keys were last used", error=repr(exc))
            for key_id, at in used.items():
                self._used[key_id] = max(at, self._used.get(key_id, 0.0))

    async def record_last_used(self) -> None:
        """Runs for the gateway's life; writes once more when cancelled (shutdown)."""
        try:
            while True:
                await asyncio.sleep(self.last_used_seconds)
                await self.write_last_used()
        finally:
            await self.write_last_used()
