"""Rate limits per API key and route class: a token bucket per (key, class) in each
gateway replica, holding the configured rate divided by the number of replicas.

Chosen over a shared store because it costs a request ~1 us and nothing outside
the process, while a shared counter costs a round trip per request (and in
PostgreSQL, the one shared store the deployment has, a write per request); see
docs/DESIGN-NOTES.md. The price: the limit holds across replicas when requests are
spread evenly over them (the Service's load balancing), and `gateway_replicas` must
follow the replica count. Pure: the clock is passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass

READ, CREATE, UPLOAD = "read", "create", "upload"
ROUTE_CLASSES = (READ, CREATE, UPLOAD)
MAX_BUCKETS = 50_000


def route_class(method: str, path: str) -> str:
    """read: GET and HEAD; upload: POST /api/files; create: every other change."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if method == "POST" and path == "/api/files":
        return UPLOAD
    return CREATE


@dataclass(frozen=True)
class Rate:
    """`per_second` tokens come back each second, up to `burst`; 0 per second: no limit."""

    per_second: float
    burst: int

    def per_replica(self, replicas: int) -> Rate:
        replicas = max(replicas, 1)
        return Rate(self.per_second / replicas, max(1, math.floor(self.burst / replicas)))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until a request would be allowed (0 when allowed)
    window: int  # seconds in which `limit` requests are allowed from a full bucket

    def headers(self) -> dict[str, str]:
        """The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers), and
        Retry-After on a refusal."""
        fields = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }
        if not self.allowed:
            fields["Retry-After"] = str(self.retry_after)
        return fields


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    def __init__(self, rates: dict[str, Rate]) -> None:
        self.rates = {name: rate for name, rate in rates.items() if rate.per_second > 0}
        self._buckets: dict[tuple[int, str], _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.rates)

    def take(self, key_id: int, klass: str, now: float) -> Decision | None:
        """Spend a token of this key's bucket for the class; None when the class has
        no limit."""
        rate = self.rates.get(klass)
        if rate is None:
            return None
        bucket = self._buckets.get((key_id, klass))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[(key_id, klass)] = _Bucket(float(rate.burst), now)
        else:
            bucket.tokens = min(
                float(rate.burst), bucket.tokens + (now - bucket.stamp) * rate.per_second
            )
            bucket.stamp = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        return Decision(
            allowed=allowed,
            limit=rate.burst,
            remaining=math.floor(bucket.tokens),
            reset=math.ceil((rate.burst - bucket.tokens) / rate.per_second),
            retry_after=0 if allowed else math.ceil((1.0 - bucket.tokens) / rate.per_second),
            window=max(1, math.ceil(rate.burst / rate.per_second)),
        )

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again (a new one starts full)."""
        self._buckets = {
            k: b
            for k, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * self.rates[k[1]].per_second < self.rates[k[1]].burst
        }
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()
