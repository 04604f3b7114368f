"""What a rate-limit check and the quota bookkeeping cost, per request and per job.

    uv run --group bench python bench/limits/run.py

1. A token bucket per key in the gateway's memory (waybill_gateway.ratelimit), against
   the shared stores a limit across replicas could use instead: Redis (a Lua token
   bucket, one EVALSHA per request; a redis-server of its own on a free port, when
   the machine has one) and PostgreSQL (one upsert per request on an UNLOGGED table).
   Sequential round trips, so the figure is the latency each request would add.
2. The quota bookkeeping on a database of its own (migrated with Alembic): the export
   create's files-and-usage statement with 0 and 1,000 unfinished exports, and what the
   stored-bytes triggers add to a task's completion (trigger on and off).
Medians of 5 rounds; the machine is shared, so compare the rows of one run."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.stack import DB_ADMIN_URL, admin_exec, free_port  # noqa: E402
from waybill_gateway.ratelimit import READ, Rate, RateLimiter  # noqa: E402

ROUNDS = 5
TOKEN_BUCKET_LUA = """
local b = redis.call('HMGET', KEYS[1], 't', 's')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(b[1]) or burst
local stamp = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 't', tokens, 's', now)
redis.call('EXPIRE', KEYS[1], 60)
return allowed
"""


def median_us(rounds: list[float], n: int) -> float:
    return statistics.median(rounds) / n * 1e6


def in_memory(n: int = 200_000) -> float:
    limiter = RateLimiter({READ: Rate(1e9, 10**9)})
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for i in range(n):
            limiter.take(i % 1000, READ, time.monotonic())
        rounds.append(time.perf_counter() - started)
    return median_us(rounds, n)


class Resp:
    """Just enough of Redis's protocol for EVALSHA over one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, *args: str) -> bytes:
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            data = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.writer.write(b"".join(parts))
        line = await self.reader.readline()
        if line.startswith(b"$"):
            size = int(line[1:])
            return (await self.reader.readexactly(size + 2))[:-2]
        if line.startswith(b"-"):
            raise RuntimeError(line.decode())
        return line[1:].strip()


async def timed(call: Callable[[int], Awaitable[object]], n: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for i in range(n):
            await call(i)
        rounds.append(time.perf_counter() - started)
    return median_us(rounds, n)


def start_redis() -> tuple[subprocess.Popen[bytes], int, str] | None:
    """A redis-server of its own on a free port (None when the machine has none)."""
    server = shutil.which("redis-server")
    if server is None:
        return None
    port = free_port()
    workdir = tempfile.mkdtemp()
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return process, port, workdir


async def redis_bucket(port: int, n: int = 5_000) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    redis = Resp(reader, writer)
    sha = (await redis.call("SCRIPT", "LOAD", TOKEN_BUCKET_LUA)).decode()

    async def take(i: int) -> object:
        return await redis.call(
            "EVALSHA", sha, "1", f"rl:{i % 1000}:read", "1000000", "1000000", str(time.time())
        )

    try:
        return await timed(take, n)
    finally:
        writer.close()


async def postgres_bucket(url: str, n: int = 2_000) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE UNLOGGED TABLE buckets (key text PRIMARY KEY, tokens float8, stamp float8)"
        )
        statement = await conn.prepare(
            """INSERT INTO buckets AS b VALUES ($1, 1000000 - 1, $2)
               ON CONFLICT (key) DO UPDATE SET
                 tokens = least(1000000, b.tokens + ($2 - b.stamp) * 1000000) - 1, stamp = $2
               RETURNING tokens"""
        )

        async def take(i: int) -> object:
            return await statement.fetchval(f"{i % 1000}:read", time.time())

        return await timed(take, n)
    finally:
        await conn.close()


async def quota_costs(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO users (name, is_admin) VALUES ('bench', false) RETURNING id"
        )
        file_id = await conn.fetchval(
            """INSERT INTO files (owner_id, filename, size, sha256, format, metadata, storage_key)
               VALUES ($1, 'f', 100, '', 'text', '{}', 'k') RETURNING id""",
            user_id,
        )
        check = await conn.prepare(
            """SELECT u.stored_bytes,
                      (SELECT count(*) FROM (
                          SELECT 1 FROM tasks t WHERE t.owner_id = u.id AND t.kind = $3
                            AND t.status IN ('pending', 'running') LIMIT $4) AS unfinished
                      ) AS running,
                      f.id, f.owner_id, f.filename
               FROM users u
               LEFT JOIN files f ON f.id = ANY($1::int[]) AND f.deleted_at IS NULL
               WHERE u.id = $2"""
        )
        plain = await conn.prepare(
            "SELECT id, owner_id, filename FROM files "
            "WHERE id = ANY($1::int[]) AND deleted_at IS NULL"
        )
        figures = {"files check before (us)": await timed(lambda i: plain.fetch([file_id]), 2000)}
        figures["files check + quotas, 0 unfinished (us)"] = await timed(
            lambda i: check.fetch([file_id], user_id, "data_export", 1000), 2000
        )
        await conn.execute(
            """INSERT INTO tasks (uuid, kind, owner_id, status, progress, total_items,
                                  processed_items, failed_items, items, request, result,
                                  attempt, ttl_hours)
               SELECT gen_random_uuid()::text, 'data_export', $1, 'pending', 0, 1, 0, 0,
                      '[]', '{}', '{}', 0, 48
               FROM generate_series(1, 2000)""",
            user_id,
        )
        await conn.execute("VACUUM ANALYZE tasks")
        figures["files check + quotas, 2,000 unfinished, quota 1,000 (us)"] = await timed(
            lambda i: check.fetch([file_id], user_id, "data_export", 1000), 500
        )
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM tasks ORDER BY id")]
        complete = await conn.prepare(
            "UPDATE tasks SET status = 'completed', artifact_size = 100 WHERE id = $1"
        )
        reopen = "UPDATE tasks SET status = 'pending', artifact_size = NULL"
        for label, trigger in (("on", "ENABLE"), ("off", "DISABLE")):
            await conn.execute(f"ALTER TABLE tasks {trigger} TRIGGER stored_bytes_update")
            rounds = []
            for _ in range(ROUNDS):
                await conn.execute(reopen)
                started = time.perf_counter()
                async with conn.transaction():
                    for task_id in ids[:1000]:
                        await complete.fetch(task_id)
                rounds.append(time.perf_counter() - started)
            figures[f"a task's completion, stored-bytes trigger {label} (us)"] = median_us(
                rounds, 1000
            )
        return figures
    finally:
        await conn.close()


def main() -> None:
    database = f"waybill_bench_limits_{uuid.uuid4().hex[:8]}"
    admin_exec(f'CREATE DATABASE "{database}"')
    server = DB_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql://{server}/{database}"
    redis = start_redis()
    try:
        env = {
            **os.environ,
            "WAYBILL_DATABASE_URL": url.replace("postgresql", "postgresql+asyncpg"),
        }
        subprocess.run(
            [sys.executable, "-m", "waybill_shared.db.migrate"], env=env, check=True, cwd=ROOT
        )
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(f"rate check, in the gateway's memory: {in_memory():.2f} us")
        if redis is None:
            print("rate check, Redis: no redis-server here")
        else:
            print(
                f"rate check, Redis (EVALSHA, loopback): {asyncio.run(redis_bucket(redis[1])):.0f} us"
            )
        postgres = asyncio.run(postgres_bucket(url))
        print(f"rate check, PostgreSQL upsert (unlogged): {postgres:.0f} us")
        for label, value in asyncio.run(quota_costs(url)).items():
            print(f"{label}: {value:.0f}")
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
            shutil.rmtree(redis[2], ignore_errors=True)
        admin_exec(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
