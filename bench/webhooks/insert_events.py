"""What webhooks add to the tracker's statement that records a batch of status events.

    uv run python bench/webhooks/insert_events.py [--rounds 300] [--batch 200]

The statement (`tasks.repository.INSERT_EVENTS`) inserts the batch and, in the same
statement, a delivery per event for every enabled subscription of the task's owner
that hears it. Timed against the statement before webhooks (main at 5cbf8c8, with its
NOTIFY; copied below), interleaved round by round on one connection, each round rolled
back (the tables do not grow), in a throwaway database on the tests' PostgreSQL:

- before:   the statement before webhooks;
- nobody:   this statement, no subscription at all;
- others:   1,000 subscriptions of 1,000 other users (the join finds none);
- everyone: the tasks' owner subscribed to `all` (a delivery per event).

Prints the median and p90 milliseconds per batch. Wall time on a shared machine: read
the medians side by side, not on their own."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.stack import DB_ADMIN_URL, admin_exec  # noqa: E402
from waybill_shared.tasks.notify import CHANNEL, payloads  # noqa: E402
from waybill_shared.tasks.repository import INSERT_EVENTS  # noqa: E402

BEFORE = """WITH new AS (
               INSERT INTO task_events (task_id, attempt, seq, event_type, status, progress,
                                        payload, occurred_at)
               SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[],
                                    $6::float8[], $7::jsonb[], $8::timestamptz[])
               ON CONFLICT DO NOTHING
               RETURNING 1),
           told AS (SELECT pg_notify($9, p) FROM unnest($10::text[]) AS p)
           SELECT count(*) FROM new WHERE (SELECT count(*) FROM told) >= 0"""


class Rollback(Exception):
    pass


async def timed(conn: asyncpg.Connection, sql: str, columns: list[list[Any]]) -> float:
    started = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.fetchval(sql, *columns)
            raise Rollback
    except Rollback:
        pass
    return (time.perf_counter() - started) * 1000


def batch(task_ids: list[int], owner: int, size: int, seq: int) -> list[list[Any]]:
    """`size` progress events over the tasks (their webhook kind: progress)."""
    now = datetime.now(UTC)
    rows = [
        (task_ids[i % len(task_ids)], 1, seq + i, "progress", "processing", 50.0, "{}", now)
        for i in range(size)
    ]
    columns = [list(c) for c in zip(*rows, strict=True)]
    return [*columns, [owner] * size, ["progress"] * size]


async def run(url: str, rounds: int, size: int) -> None:
    conn = await asyncpg.connect(url)
    owner = await conn.fetchval(
        "INSERT INTO users (name, api_key_hash, is_admin) VALUES ('bench', 'x', false) RETURNING id"
    )
    task_ids = [
        await conn.fetchval(
            """INSERT INTO tasks (uuid, kind, owner_id, status, progress, total_items,
                                  processed_items, failed_items, items, request, result,
                                  attempt, ttl_hours)
               VALUES ($1, 'data_export', $2, 'processing', 0, 1, 0, 0, '[]', '{}', '{}', 1, 48)
               RETURNING id""",
            str(uuid.uuid4()),
            owner,
        )
        for _ in range(50)
    ]

    async def others() -> None:
        await conn.execute(
            """WITH u AS (INSERT INTO users (name, api_key_hash, is_admin)
                          SELECT 'other-' || g, 'k' || g, false FROM generate_series(1, 1000) g
                          RETURNING id)
               INSERT INTO webhook_subscriptions (owner_id, url, events, secret)
               SELECT id, 'https://example.org/h', '{all}', 'whsec_x' FROM u"""
        )

    async def everyone() -> None:
        await conn.execute(
            """INSERT INTO webhook_subscriptions (owner_id, url, events, secret)
               VALUES ($1, 'https://example.org/h', '{all}', 'whsec_x')""",
            owner,
        )

    print(f"{rounds} rounds of {size} events per batch, each statement in turn (ABBA);")
    print("ms per batch, median (p90):")
    print("| subscriptions | before webhooks | with webhooks | difference of medians |")
    print("|---|---|---|---|")
    seq = 0
    for label, setup in (("nobody", None), ("others", others), ("everyone", everyone)):
        if setup is not None:
            await setup()
        await conn.execute("ANALYZE")
        before: list[float] = []
        after: list[float] = []
        for round_ in range(rounds):
            seq += size
            columns = batch(task_ids, owner, size, seq)
            told = [CHANNEL, payloads(task_ids)]
            pair = [(before, BEFORE, columns[:8] + told), (after, INSERT_EVENTS, columns + told)]
            for times, sql, values in pair if round_ % 2 else reversed(pair):
                times.append(await timed(conn, sql, values))
        b, a = statistics.median(before), statistics.median(after)
        print(
            f"| {label} | {b:.2f} ({p90(before):.2f}) | {a:.2f} ({p90(after):.2f}) "
            f"| {a - b:+.2f} ms ({(a - b) * 1000 / size:+.1f} us per event) |"
        )
    await conn.close()


def p90(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    database = f"waybill_bench_{uuid.uuid4().hex[:8]}"
    admin_exec(f'CREATE DATABASE "{database}"')
    server = DB_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql://{server}/{database}"
    try:
        subprocess.run(
            [sys.executable, "-m", "waybill_shared.db.migrate"],
            env={
                "PATH": "/usr/bin:/bin",
                "WAYBILL_DATABASE_URL": url.replace("://", "+asyncpg://"),
            },
            check=True,
            cwd=ROOT,
        )
        asyncio.run(run(url, args.rounds, args.batch))
    finally:
        admin_exec(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
