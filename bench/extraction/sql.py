"""Extraction end to end against PostgreSQL: a generated history of N jobs (a chain,
and a wide fan-out) is written to a database of the bench's own, then the extraction
service's own path runs on it, all jobs selected: the access and request checks,
loading the provenance graph (counting SQL queries), building the .ga document; and,
in its own column, the gxformat2 form the extraction service makes beside it.
Medians of --repeat; peak RSS of the process.

    uv run python bench/extraction/sql.py [--sizes 1000 10000 50000] [--repeat 3]

The broker and S3 hops of a real extraction add a few milliseconds (one message,
two small objects); they are measured by the end-to-end tests, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

import asyncpg
from sqlalchemy import event, insert, text

from waybill_extraction.format2 import format2_yaml
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.db.models import Dataset, History, Job, JobInput, JobOutput, StoredFile, User
from waybill_shared.db.session import create_engine, create_sessionmaker
from waybill_shared.extraction.requests import build_document, check_extraction_request
from waybill_shared.settings import WaybillSettings

ADMIN_URL = os.environ.get(
    "WAYBILL_BENCH_DB_ADMIN", "postgresql://waybill:waybill@127.0.0.1:5432/postgres"
)


async def load(settings: WaybillSettings, n: int, shape: str) -> None:
    """Job i reads the previous output (chain) or the one input (fan-out)."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(User), [{"id": 1, "name": "bench"}])
            await conn.execute(insert(History), [{"id": 1, "owner_id": 1, "name": "bench"}])
            await conn.execute(
                insert(StoredFile),
                [
                    {
                        "id": 1,
                        "owner_id": 1,
                        "filename": "f",
                        "size": 1,
                        "sha256": "x",
                        "format": "txt",
                        "storage_key": "k",
                    }
                ],
            )
            jobs, datasets, inputs, outputs = [], [], [], []
            datasets.append({"id": 1, "history_id": 1, "hid": 1, "name": "input", "file_id": 1})
            for i in range(1, n + 1):
                source = i if shape == "chain" else 1
                jobs.append(
                    {
                        "id": i,
                        "history_id": 1,
                        "owner_id": 1,
                        "tool_id": f"tool{i % 13}",
                        "tool_version": "1.0",
                        "parameters": {"n": i},
                    }
                )
                inputs.append({"job_id": i, "name": "input", "src": "hda", "ref_id": source})
                outputs.append({"job_id": i, "name": "out", "src": "hda", "ref_id": i + 1})
                datasets.append(
                    {
                        "id": i + 1,
                        "history_id": 1,
                        "hid": i + 1,
                        "name": f"out{i}",
                        "file_id": 1,
                        "creating_job_id": i,
                    }
                )
            for model, rows in (
                (Job, jobs),
                (Dataset, datasets),
                (JobInput, inputs),
                (JobOutput, outputs),
            ):
                for start in range(0, len(rows), 5000):
                    await conn.execute(insert(model), rows[start : start + 5000])
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def extract_once(settings: WaybillSettings, n: int) -> tuple[float, int, int, float]:
    engine = create_engine(settings)
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    sessions = create_sessionmaker(engine)
    request = ExtractionRequested(
        task_id=uuid.uuid4(),
        owner_id=1,
        workflow_name="bench",
        from_history_id=1,
        job_ids=list(range(1, n + 1)),
        hda_ids=[1],
    )
    try:
        async with sessions() as session:  # warm the pool: a worker's is warm
            await session.get(User, 1)
        queries = 0
        started = time.perf_counter()
        async with sessions() as session:  # as the extraction service does it
            user = await session.get(User, 1)
            assert user is not None
            graph = await check_extraction_request(session, user, request)
        document = build_document(graph, request)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        format2_yaml(document)
        format2_seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return elapsed, queries, len(document["steps"]), format2_seconds


def run_size(n: int, shape: str, repeat: int) -> None:
    """In a process of its own: its peak RSS is this size's."""
    database = f"waybill_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    try:
        env = dict(os.environ, WAYBILL_DATABASE_URL=url.replace("postgresql", "postgresql+asyncpg"))
        subprocess.run([sys.executable, "-m", "waybill_shared.db.migrate"], env=env, check=True)
        settings = WaybillSettings(database_url=env["WAYBILL_DATABASE_URL"])
        asyncio.run(load(settings, n, shape))
        runs = [asyncio.run(extract_once(settings, n)) for _ in range(repeat)]
        elapsed = statistics.median(r[0] for r in runs)
        format2 = statistics.median(r[3] for r in runs)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{shape:8} {n:>7} {elapsed:>9.3f} {elapsed / n * 1e6:>8.1f} {runs[0][1]:>8} "
            f"{rss:>12.0f} {runs[0][2]:>7} {format2:>10.3f}",
            flush=True,
        )
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=["chain", "fan-out"])
    args = parser.parse_args()
    print(
        f"{'shape':8} {'jobs':>7} {'median s':>9} {'us/job':>8} {'queries':>8} "
        f"{'peak RSS MB':>12} {'steps':>7} {'format2 s':>10}"
    )
    for shape in args.shapes:
        for n in args.sizes:
            process = multiprocessing.Process(target=run_size, args=(n, shape, args.repeat))
            process.start()
            process.join()


if __name__ == "__main__":
    main()
