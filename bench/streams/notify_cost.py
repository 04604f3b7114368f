"""What the event streams' NOTIFY costs per job: the tracker's real `apply_events`
with its notices against the same statement with none (the payload list emptied), in
alternating rounds on a database of the benchmark's own.

    uv run python bench/streams/notify_cost.py [--jobs 2000] [--rounds 3]

Each job is five events (processing, two files, a progress step, completed), applied
in batches of `--batch` events as the tracker takes them off its queue (events of
several jobs in one batch, so one notice names several tasks). A gateway's
TaskListener is connected throughout, with a subscriber on every task (every job
followed by a stream). Counted per job: the wall time of applying, the CPU of the
applying and the listening PostgreSQL backends (from /proc: the server runs here),
and the listener's own Python time on the notices.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from waybill_shared.contracts.messages import TaskEvent
from waybill_shared.db.models import Base
from waybill_shared.db.pg import init_json_codecs
from waybill_shared.tasks import notify, repository
from waybill_shared.tasks.notify import TaskListener

ADMIN_URL = os.environ.get(
    "WAYBILL_TEST_DB_ADMIN", "postgresql://waybill:waybill@127.0.0.1:5432/postgres"
)
TICK = os.sysconf("SC_CLK_TCK")
REAL_PAYLOADS = notify.payloads


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def events_of(task_uuid: str) -> list[TaskEvent]:
    steps = [
        ("processing", 0.0, 0, None),
        ("item", 40.0, 1, 0),
        ("progress", 60.0, 1, None),
        ("item", 99.0, 2, 1),
        ("completed", 100.0, 2, None),
    ]
    out = []
    for seq, (event, progress, done, index) in enumerate(steps, start=1):
        item = (
            {"file_id": index, "filename": f"f{index}.csv", "status": "completed"}
            if index is not None
            else None
        )
        out.append(
            TaskEvent.model_validate(
                {
                    "task_id": task_uuid,
                    "kind": "data_export",
                    "attempt": 1,
                    "seq": seq,
                    "event": event,
                    "progress": progress,
                    "processed_items": done,
                    "item_index": index,
                    "item": item,
                    "artifact": {
                        "key": f"exports/{task_uuid}/e.zip",
                        "size": 1,
                        "sha256": "0",
                        "filename": "e.zip",
                    }
                    if event == "completed"
                    else None,
                }
            )
        )
    return out


async def one_round(url: str, *, jobs: int, batch: int, notices: bool) -> dict[str, float]:
    notify.payloads = REAL_PAYLOADS if notices else (lambda ids: [])  # type: ignore[assignment]
    conn = await asyncpg.connect(url)
    await init_json_codecs(conn)
    woken = 0
    callback_seconds = 0.0
    listener = TaskListener(lambda: asyncpg.connect(url))
    on_notice = listener._on_notice

    def timed(*args: object) -> None:
        nonlocal woken, callback_seconds
        started = time.perf_counter()
        on_notice(*args)  # type: ignore[arg-type]
        callback_seconds += time.perf_counter() - started
        woken += 1

    listener._on_notice = timed  # type: ignore[method-assign]
    listening = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 10)
    listener_pid = await conn.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'"
    )
    try:
        uuids = [str(uuid.uuid4()) for _ in range(jobs)]
        for task_uuid in uuids:
            registered = await repository.register_task(
                conn,
                task_uuid=task_uuid,
                kind="data_export",
                owner_id=1,
                request={},
                total_items=2,
                items=[{}, {}],
            )
            listener.subscribe(registered.task.id)
        # Interleave jobs as several workers would: each batch holds events of
        # batch/5 jobs.
        per_batch = max(batch // 5, 1)
        batches = []
        for start in range(0, jobs, per_batch):
            group = uuids[start : start + per_batch]
            batches.append([e for u in group for e in events_of(u)])
        applier_pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu_before = backend_cpu(applier_pid), backend_cpu(listener_pid)
        started = time.perf_counter()
        for events in batches:
            async with conn.transaction():
                await repository.apply_events(conn, events)
        wall = time.perf_counter() - started
        await asyncio.sleep(0.5)  # the last notices reach the listener
        cpu_after = backend_cpu(applier_pid), backend_cpu(listener_pid)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await conn.close()
    return {
        "wall_ms": wall / jobs * 1000,
        "applier_backend_ms": (cpu_after[0] - cpu_before[0]) / jobs * 1000,
        "listener_backend_ms": (cpu_after[1] - cpu_before[1]) / jobs * 1000,
        "listener_python_us": callback_seconds / jobs * 1e6,
        "notices": woken,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="events per tracker batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name = f"waybill_bench_notify_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        async with engine.begin() as c:
            await c.run_sync(Base.metadata.create_all)
            await c.exec_driver_sql(
                "INSERT INTO users (id, name, api_key_hash, is_admin) VALUES (1, 'b', 'x', false)"
            )
        await engine.dispose()
        results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        await one_round(url, jobs=min(args.jobs, 300), batch=args.batch, notices=True)  # warm-up
        for _ in range(args.rounds):
            for notices in (False, True):
                results[notices].append(
                    await one_round(url, jobs=args.jobs, batch=args.batch, notices=notices)
                )
        print(
            f"{args.jobs} jobs x 5 events, batches of {args.batch} events, "
            f"median of {args.rounds} alternating rounds, load {os.getloadavg()[0]:.1f}"
        )
        print(
            "| | wall ms/job | applying backend CPU ms/job | listening backend CPU ms/job "
            "| listener Python us/job | notices |"
        )
        print("|---|---|---|---|---|---|")
        for notices in (False, True):
            rows = results[notices]
            cells = [
                f"{statistics.median(r[key] for r in rows):.3f}"
                for key in (
                    "wall_ms",
                    "applier_backend_ms",
                    "listener_backend_ms",
                    "listener_python_us",
                )
            ]
            label = "with NOTIFY" if notices else "without"
            print(f"| {label} | {' | '.join(cells)} | {int(rows[-1]['notices'])} |")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
