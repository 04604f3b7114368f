"""Throughput of the whole stack for small zip exports.

Starts its own servers and services (the tests' harness: own database, queue prefix
and S3 server), uploads a few small files, then submits N exports of one file each
as fast as the gateway accepts them and waits until all are completed. Prints jobs/s
(submit to last completion), the acceptance rate and latency percentiles.

    uv run python bench/pipeline/run.py --jobs 1000 [--workers 1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from support.stack import ADMIN_KEY, start_infra, start_stack, stop_infra


async def submit_all(
    base: str, key: str, file_ids: list[int], jobs: int, concurrency: int
) -> tuple[list[int], list[float]]:
    ids: list[int] = []
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:

        async def one(i: int) -> None:
            async with semaphore:
                started = time.perf_counter()
                response = await client.post(
                    "/api/data-export/jobs",
                    json={
                        "name": f"bench-{i}",
                        "file_ids": [file_ids[i % len(file_ids)]],
                        "export_format": "zip",
                    },
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                ids.append(response.json()["id"])

        await asyncio.gather(*(one(i) for i in range(jobs)))
    return ids, latencies


def wait_all(base: str, key: str, jobs: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        while time.monotonic() < deadline:
            stats = client.get("/api/data-export/statistics").json()
            done = stats["by_status"].get("completed", 0)
            failed = stats["by_status"].get("failed", 0)
            if done + failed >= jobs:
                if failed:
                    print(f"WARNING: {failed} jobs failed")
                return time.monotonic()
            time.sleep(0.2)
    raise TimeoutError("not all jobs finished")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="export-worker processes")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight")
    args = parser.parse_args()

    infra = start_infra(Path(tempfile.mkdtemp(prefix="waybill-bench-")))
    try:
        stack = start_stack(infra, ("gateway", "tracker", "export-worker"))
        for _ in range(args.workers - 1):
            extra = infra.service("export-worker").start()
            extra.wait_ready()
            stack.services[f"export-worker-{extra.port}"] = extra
        with stack.client(ADMIN_KEY) as admin:
            user = admin.post("/api/users", json={"name": "bench"}).json()
        key = user["api_key"]
        with stack.client(key) as client:
            file_ids = [
                client.post(
                    "/api/files", files={"file": (f"f{i}.txt", f"row {i}\n".encode() * 20)}
                ).json()["id"]
                for i in range(10)
            ]
        started = time.monotonic()
        ids, latencies = asyncio.run(
            submit_all(stack.gateway_url, key, file_ids, args.jobs, args.concurrency)
        )
        accepted = time.monotonic()
        finished = wait_all(stack.gateway_url, key, args.jobs, timeout=1800)
        total = finished - started
        latencies.sort()
        print(f"jobs: {len(ids)}  export-workers: {args.workers}  concurrency: {args.concurrency}")
        print(
            f"accepted in {accepted - started:.2f} s -> {len(ids) / (accepted - started):.1f} requests/s"
        )
        print(
            f"create latency ms: median {statistics.median(latencies) * 1000:.1f}  "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f}"
        )
        print(f"all completed in {total:.2f} s -> {len(ids) / total:.1f} jobs/s end to end")
        stack.stop()
    finally:
        stop_infra(infra)


if __name__ == "__main__":
    main()
