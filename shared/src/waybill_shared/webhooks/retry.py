"""When a failed delivery is tried again: exponential backoff with full jitter (a
uniformly random wait between 0 and the exponential cap, so many failing deliveries
do not come back in step), given up once the retry window (24 h) is over."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def backoff_seconds(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The wait after failed attempt number `attempt` (1 is the first)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))
    return (rng or random).uniform(0.0, ceiling)


def next_attempt(
    *,
    attempt: int,
    created_at: datetime,
    now: datetime,
    base: float,
    cap: float,
    window: float,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after failed attempt `attempt`; None once the next try would
    fall past `window` seconds after the delivery was made (give up)."""
    at = now + timedelta(seconds=backoff_seconds(attempt, base=base, cap=cap, rng=rng))
    return at if at <= created_at + timedelta(seconds=window) else None
