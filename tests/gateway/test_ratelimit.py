"""The token bucket per key and route class (pure: the clock is passed in)."""

from __future__ import annotations

import pytest

from waybill_gateway.ratelimit import CREATE, READ, UPLOAD, Rate, RateLimiter, route_class


def limiter(**rates: Rate) -> RateLimiter:
    return RateLimiter(rates)


def allowed(bucket: RateLimiter, key_id: int, klass: str, now: float) -> bool:
    decision = bucket.take(key_id, klass, now)
    assert decision is not None
    return decision.allowed


def test_a_full_bucket_allows_the_burst_then_refuses() -> None:
    bucket = limiter(read=Rate(per_second=2, burst=3))
    decisions = [bucket.take(1, READ, now=100.0) for _ in range(4)]
    assert [d.allowed for d in decisions if d] == [True, True, True, False]
    assert [d.remaining for d in decisions if d] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused is not None
    assert refused.retry_after == 1  # half a second to the next token, rounded up
    assert refused.reset == 2  # 3 tokens at 2/s
    assert refused.limit == 3 and refused.window == 2
    assert refused.headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "2",
        "RateLimit-Policy": "3;w=2",
        "Retry-After": "1",
    }
    assert decisions[0] is not None and "Retry-After" not in decisions[0].headers()


def test_tokens_come_back_at_the_rate_and_never_past_the_burst() -> None:
    bucket = limiter(create=Rate(per_second=1, burst=2))
    assert allowed(bucket, 7, CREATE, now=0.0)
    assert allowed(bucket, 7, CREATE, now=0.0)
    assert not allowed(bucket, 7, CREATE, now=0.5)
    assert allowed(bucket, 7, CREATE, now=1.0)
    later = bucket.take(7, CREATE, now=1000.0)  # long idle: full again, not 1000 tokens
    assert later is not None and later.allowed and later.remaining == 1


def test_refusals_spend_nothing_and_retry_after_is_enough() -> None:
    bucket = limiter(upload=Rate(per_second=0.25, burst=1))
    assert allowed(bucket, 1, UPLOAD, now=0.0)
    refused = bucket.take(1, UPLOAD, now=1.0)
    assert refused is not None and not refused.allowed and refused.retry_after == 3
    for t in (1.5, 2.0, 3.9):
        assert not allowed(bucket, 1, UPLOAD, now=t)
    assert allowed(bucket, 1, UPLOAD, now=1.0 + refused.retry_after)


def test_each_key_and_class_has_its_own_bucket() -> None:
    bucket = limiter(read=Rate(1, 1), create=Rate(1, 1))
    assert allowed(bucket, 1, READ, now=0)
    assert not allowed(bucket, 1, READ, now=0)
    assert allowed(bucket, 2, READ, now=0)
    assert allowed(bucket, 1, CREATE, now=0)


def test_a_class_without_a_rate_is_not_limited() -> None:
    bucket = limiter(read=Rate(0, 10), create=Rate(5, 5))
    assert bucket.take(1, READ, now=0) is None
    assert bucket.take(1, UPLOAD, now=0) is None
    assert bucket.enabled
    assert not limiter(read=Rate(0, 1)).enabled


@pytest.mark.parametrize(
    ("rate", "replicas", "expected"),
    [
        (Rate(100, 200), 1, Rate(100, 200)),
        (Rate(100, 200), 4, Rate(25, 50)),
        (Rate(3, 3), 2, Rate(1.5, 1)),
        (Rate(1, 1), 5, Rate(0.2, 1)),  # a burst never drops below one request
        (Rate(10, 10), 0, Rate(10, 10)),
    ],
)
def test_each_replica_holds_its_share(rate: Rate, replicas: int, expected: Rate) -> None:
    assert rate.per_replica(replicas) == expected


@pytest.mark.parametrize(
    ("method", "path", "klass"),
    [
        ("GET", "/api/files", READ),
        ("HEAD", "/api/files/1/content", READ),
        ("POST", "/api/files", UPLOAD),
        ("POST", "/api/data-export/jobs", CREATE),
        ("DELETE", "/api/files/1", CREATE),
        ("PUT", "/api/users/3/quotas", CREATE),
        ("POST", "/api/files/1", CREATE),
    ],
)
def test_route_classes(method: str, path: str, klass: str) -> None:
    assert route_class(method, path) == klass


def test_full_buckets_are_forgotten_when_there_are_too_many(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("waybill_gateway.ratelimit.MAX_BUCKETS", 3)
    bucket = limiter(read=Rate(1, 2))
    for key in (1, 2, 3):
        bucket.take(key, READ, now=0.0)
    bucket.take(1, READ, now=0.0)  # key 1 is empty; 2 and 3 fill up by t=1
    bucket.take(4, READ, now=1.0)
    assert set(bucket._buckets) == {(1, READ), (4, READ)}
    refused = bucket.take(1, READ, now=1.0)  # key 1 kept its state: one token back
    assert refused is not None and refused.allowed and refused.remaining == 0
