"""The webhook statements: subscriptions (the gateway), deliveries (made where task
events are recorded, sent by the tracker). Plain SQL on asyncpg, like the task
lifecycle's; none commits.

A subscription is visible to its owner, and to administrators (`owner_id` None)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from waybill_shared.db.pg import Connection, Record

SUBSCRIPTION_COLUMNS = (
    "id, owner_id, url, events, enabled, consecutive_failures, disabled_reason, "
    "disabled_at, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "d.id, d.subscription_id AS webhook_id, d.message_id, t.uuid AS task_uuid, d.event, d.status, "
    "d.attempts, d.response_code, d.last_error, d.created_at, d.last_attempt_at, "
    "d.next_attempt_at, d.delivered_at"
)


def deliveries_cte(source: str, *, kind: str, owner: str) -> str:
    """A CTE (for a WITH clause) that makes a delivery for every enabled subscription
    hearing each task event just inserted: `source` is a FROM clause in which `new`
    holds the inserted events (id, task_id); `kind` and `owner` are expressions for an
    event's webhook kind (NULL: none) and its task's owner. One join in the statement
    that records the events, so it costs no round trip, and next to nothing when
    nobody subscribes."""
    return f"""webhook_deliveries_made AS (
            INSERT INTO webhook_deliveries (subscription_id, task_id, event_id, event)
            SELECT s.id, new.task_id, new.id, {kind}
            FROM {source}
            JOIN webhook_subscriptions s
              ON s.owner_id = {owner} AND s.enabled AND s.events && ARRAY[{kind}, 'all']
            WHERE {kind} IS NOT NULL)"""


# --- subscriptions (the gateway) ------------------------------------------------------


async def create_subscription(
    conn: Connection, *, owner_id: int, url: str, events: list[str], secret: str
) -> Record:
    record: Record = await conn.fetchrow(
        f"""INSERT INTO webhook_subscriptions (owner_id, url, events, secret)
            VALUES ($1, $2, $3, $4) RETURNING {SUBSCRIPTION_COLUMNS}""",
        owner_id,
        url,
        events,
        secret,
    )
    return record


async def get_subscription(
    conn: Connection, subscription_id: int, *, owner_id: int | None
) -> Record | None:
    record: Record | None = await conn.fetchrow(
        f"""SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
            WHERE id = $1 AND ($2::int IS NULL OR owner_id = $2)""",
        subscription_id,
        owner_id,
    )
    return record


async def list_subscriptions(
    conn: Connection, *, owner_id: int | None, limit: int, offset: int
) -> tuple[list[Record], int]:
    rows = await conn.fetch(
        f"""SELECT {SUBSCRIPTION_COLUMNS}, count(*) OVER () AS total FROM webhook_subscriptions
            WHERE $1::int IS NULL OR owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3""",
        owner_id,
        limit,
        offset,
    )
    if rows:
        return list(rows), int(rows[0]["total"])
    total = await conn.fetchval(
        "SELECT count(*) FROM webhook_subscriptions WHERE $1::int IS NULL OR owner_id = $1",
        owner_id,
    )
    return [], int(total)


async def update_subscription(
    conn: Connection,
    subscription_id: int,
    *,
    owner_id: int | None,
    url: str | None = None,
    events: list[str] | None = None,
    secret: str | None = None,
    enabled: bool | None = None,
) -> Record | None:
    """Change what is given. Enabling again starts the count of failures afresh and
    clears why it was disabled."""
    record: Record | None = await conn.fetchrow(
        f"""UPDATE webhook_subscriptions SET
                url = coalesce($3, url),
                events = coalesce($4, events),
                secret = coalesce($5, secret),
                enabled = coalesce($6, enabled),
                consecutive_failures = CASE WHEN $6 THEN 0 ELSE consecutive_failures END,
                disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
                disabled_at = CASE WHEN $6 THEN NULL ELSE disabled_at END,
                updated_at = now()
            WHERE id = $1 AND ($2::int IS NULL OR owner_id = $2)
            RETURNING {SUBSCRIPTION_COLUMNS}""",
        subscription_id,
        owner_id,
        url,
        events,
        secret,
        enabled,
    )
    return record


async def delete_subscription(
    conn: Connection, subscription_id: int, *, owner_id: int | None
) -> bool:
    """Its deliveries go with it (sent or not)."""
    deleted = await conn.fetchval(
        """DELETE FROM webhook_subscriptions WHERE id = $1 AND ($2::int IS NULL OR owner_id = $2)
           RETURNING id""",
        subscription_id,
        owner_id,
    )
    return deleted is not None


async def enqueue_test(conn: Connection, subscription_id: int) -> Record:
    """A `test` delivery (no task behind it), sent like any other."""
    record: Record = await conn.fetchrow(
        f"""WITH d AS (
                INSERT INTO webhook_deliveries (subscription_id, event) VALUES ($1, 'test')
                RETURNING *)
            SELECT {DELIVERY_COLUMNS} FROM d LEFT JOIN tasks t ON t.id = d.task_id""",
        subscription_id,
    )
    return record


async def list_deliveries(
    conn: Connection, subscription_id: int, *, limit: int, offset: int
) -> tuple[list[Record], int]:
    """Newest first."""
    rows = await conn.fetch(
        f"""SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
            LEFT JOIN tasks t ON t.id = d.task_id
            WHERE d.subscription_id = $1 ORDER BY d.id DESC LIMIT $2 OFFSET $3""",
        subscription_id,
        limit,
        offset,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1", subscription_id
    )
    return list(rows), int(total)


# --- deliveries (the tracker) ---------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A delivery claimed for one attempt, with what sending it needs."""

    id: int
    message_id: str
    event: str
    attempt: int  # this one's number (1 is the first)
    created_at: datetime
    subscription_id: int
    url: str
    secret: str
    task_id: int | None
    event_id: int | None


async def claim_due(conn: Connection, *, limit: int, lease_seconds: float) -> list[Due]:
    """Take up to `limit` deliveries that are due, of enabled subscriptions, for one
    attempt each: their next attempt moves `lease_seconds` ahead, so another tracker
    (or this one after a crash) takes them again only if this attempt never records
    its outcome. SKIP LOCKED: trackers claiming at once take different rows."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT d.id FROM webhook_deliveries d
               JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
               WHERE d.status = 'pending' AND d.next_attempt_at <= now()
               ORDER BY d.next_attempt_at LIMIT $1
               FOR UPDATE OF d SKIP LOCKED)
           UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1, last_attempt_at = now(),
               next_attempt_at = now() + make_interval(secs => $2)
           FROM due, webhook_subscriptions s
           WHERE d.id = due.id AND s.id = d.subscription_id
           RETURNING d.id, d.message_id, d.event, d.attempts, d.created_at, d.subscription_id,
                     s.url, s.secret, d.task_id, d.event_id""",
        limit,
        float(lease_seconds),
    )
    return [
        Due(
            id=r["id"],
            message_id=r["message_id"],
            event=r["event"],
            attempt=r["attempts"],
            created_at=r["created_at"],
            subscription_id=r["subscription_id"],
            url=r["url"],
            secret=r["secret"],
            task_id=r["task_id"],
            event_id=r["event_id"],
        )
        for r in rows
    ]


async def release(conn: Connection, delivery_ids: Sequence[int]) -> None:
    """Claimed deliveries whose attempt was interrupted (its outcome unknown, so not
    counted): due again now."""
    await conn.execute(
        """UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = attempts - 1
           WHERE id = ANY($1::bigint[]) AND status = 'pending'""",
        list(delivery_ids),
    )


async def events_by_id(conn: Connection, event_ids: Sequence[int]) -> dict[int, Record]:
    rows = await conn.fetch(
        """SELECT id, attempt, seq, event_type, status, progress, payload, occurred_at
           FROM task_events WHERE id = ANY($1::int[])""",
        list(event_ids),
    )
    return {r["id"]: r for r in rows}


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended. `retry_at` None after a failure: given up."""

    delivery_id: int
    subscription_id: int
    ok: bool
    response_code: int | None
    error: str | None
    retry_at: datetime | None = None


async def record_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], *, disable_after: int
) -> list[Record]:
    """Write each attempt's outcome on its delivery, and on its subscription the count
    of failures in a row: a success resets it; reaching `disable_after` disables the
    subscription with the reason. Returns the subscriptions disabled now."""
    if not outcomes:
        return []
    await conn.executemany(
        """UPDATE webhook_deliveries SET
               status = CASE WHEN $2 THEN 'delivered' WHEN $5::timestamptz IS NULL THEN 'failed'
                             ELSE 'pending' END,
               delivered_at = CASE WHEN $2 THEN now() END,
               next_attempt_at = coalesce($5, next_attempt_at),
               response_code = $3, last_error = $4
           WHERE id = $1""",
        [(o.delivery_id, o.ok, o.response_code, o.error, o.retry_at) for o in outcomes],
    )
    disabled: list[Record] = []
    for o in outcomes:  # a few per claim; in order, so the count is each one's
        record = await conn.fetchrow(
            """UPDATE webhook_subscriptions s SET
                   consecutive_failures = CASE WHEN $2 THEN 0 ELSE s.consecutive_failures + 1 END,
                   enabled = s.enabled AND ($2 OR s.consecutive_failures + 1 < $3),
                   disabled_at = CASE WHEN s.enabled AND NOT $2 AND s.consecutive_failures + 1 >= $3
                                      THEN now() ELSE s.disabled_at END,
                   disabled_reason = CASE
                       WHEN s.enabled AND NOT $2 AND s.consecutive_failures + 1 >= $3
                       THEN format('%s delivery attempts in a row failed; the last: %s',
                                   s.consecutive_failures + 1, $4::text)
                       ELSE s.disabled_reason END
               FROM webhook_subscriptions before
               WHERE s.id = $1 AND before.id = s.id
               RETURNING s.id, s.enabled, before.enabled AS was_enabled, s.disabled_reason""",
            o.subscription_id,
            o.ok,
            disable_after,
            o.error or f"HTTP {o.response_code}",
        )
        if record is not None and record["was_enabled"] and not record["enabled"]:
            disabled.append(record)
    return disabled
