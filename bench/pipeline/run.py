"""The pipeline's speed against the Celery set-ups it replaces, in one run.

Everything runs on servers of the benchmark's own, so the CPU it counts is this run's
alone: a throwaway PostgreSQL cluster and RabbitMQ node, and the tests' S3 server.

    uv run --group bench python bench/pipeline/run.py [--jobs 2000] [--quick]

Phases (each prints its lines; a table at the end):
  s3        the S3 server's own ceiling: PUT+GET pairs of a 200-byte object, 1 and 8 threads
  celery-a  Celery 5, rpc results, a no-op task: the messaging floor
  celery-b  Celery with PostgreSQL results, a task that does what one export does
            (fetch the object from S3, zip it, upload the zip)
  burst     ours: N one-file zip exports through the HTTP API, 32 in flight
  single    ours, one at a time: create, GET, create -> completed
  big       ten 100 MB CSV -> Parquet exports against the sum of the bare conversions
  gateway   the gateway alone (workers stopped): creates/s and GET latency at 1/10/50
            clients, with wrk

Jobs/s is N over the time from the first submit to the last committed completed row;
latency is from accept (the task's row) to the committed completed row. CPU is read
from /proc per process tree (see procstat.py). Never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

from waybill_shared.settings import WaybillSettings
from waybill_tracker.settings import TrackerSettings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from procstat import CpuMeter, self_cpu_seconds  # noqa: E402

from support.pg_cluster import PgCluster  # noqa: E402
from support.rabbit_node import RabbitNode  # noqa: E402
from support.stack import (  # noqa: E402
    ADMIN_KEY,
    Infra,
    Stack,
    s3_client,
    start_infra,
    start_stack,
    stop_infra,
)

# What `make run` gives a new user: the tests' harness tightens lease, sweep and
# reconcile intervals (a reconcile every 2 s lists every artifact), a benchmark
# measures the defaults, read from the settings so that none is forgotten.
TUNED_BY_THE_TESTS = (
    "database_pool_size",
    "lease_seconds",
    "max_attempts",
    "sweep_interval_seconds",
    "cleanup_interval_seconds",
    "reconcile_interval_seconds",
    "service_account_cache_seconds",
    "shutdown_grace_seconds",
)
DEFAULTS = {
    f"WAYBILL_{name.upper()}": str(WaybillSettings.model_fields[name].default)
    for name in TUNED_BY_THE_TESTS
} | {
    "WAYBILL_WEBHOOK_POLL_SECONDS": str(
        TrackerSettings.model_fields["webhook_poll_seconds"].default
    )
}
# --limits: "off" turns every rate limit and quota off; "on" checks every rate limit
# and the stored-bytes and files quotas on every request without reaching any (rates far
# above what this machine does), with no running-exports quota (this phase piles up
# thousands of unfinished exports of one user, which that quota is there to refuse);
# "worst" adds a running-exports quota above them all, so each create counts every
# unfinished export; "default" is what `make run` has.
RATES_ON = {
    f"WAYBILL_RATE_LIMIT_{c}_{f}": "1000000"
    for c in ("READ", "CREATE", "UPLOAD")
    for f in ("PER_SECOND", "BURST")
}
LIMITS: dict[str, dict[str, str]] = {
    "off": {
        "WAYBILL_RATE_LIMIT_READ_PER_SECOND": "0",
        "WAYBILL_RATE_LIMIT_CREATE_PER_SECOND": "0",
        "WAYBILL_RATE_LIMIT_UPLOAD_PER_SECOND": "0",
        "WAYBILL_QUOTA_STORED_BYTES": "0",
        "WAYBILL_QUOTA_RUNNING_EXPORTS": "0",
        "WAYBILL_MAX_FILES_PER_EXPORT": "0",
    },
    "on": {**RATES_ON, "WAYBILL_QUOTA_RUNNING_EXPORTS": "0"},
    "worst": {**RATES_ON, "WAYBILL_QUOTA_RUNNING_EXPORTS": "1000000"},
    "default": {},
}
SMALL_FILE = b"row of a small text file\n" * 6 + b"last\n"  # ~160 bytes, as in the issue


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Result:
    name: str
    jobs: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def cpu_ms_per_job(self, name: str) -> float:
        return 1000 * self.cpu.get(name, 0.0) / max(self.jobs, 1)


@dataclass
class Servers:
    pg: PgCluster
    rabbit: RabbitNode
    infra: Infra

    @classmethod
    def start(cls) -> Servers:
        pg = PgCluster()
        pg.start()
        rabbit = RabbitNode()
        rabbit.start()
        infra = start_infra(
            Path(tempfile.mkdtemp(prefix="waybill-bench-")),
            amqp_url=rabbit.url,
            rabbitmqctl=rabbit.ctl,
            db_admin_url=pg.admin_url,
        )
        return cls(pg, rabbit, infra)

    def rabbit_pid(self) -> int:
        return int((self.rabbit.home / "node.pid").read_text().strip())

    def s3_pid(self) -> int:
        assert self.infra.s3_process is not None
        return self.infra.s3_process.pid

    def stop(self) -> None:
        try:
            stop_infra(self.infra)
        finally:
            self.rabbit.remove()
            self.pg.remove()


# --- the S3 server's own ceiling ------------------------------------------------------


def s3_ceiling(servers: Servers, seconds: float) -> dict[int, float]:
    client = s3_client(servers.infra)
    bucket = servers.infra.bucket
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    body = b"x" * 200
    rates: dict[int, float] = {}
    for threads in (1, 8):
        stop = time.monotonic() + seconds
        counts = [0] * threads

        def loop(slot: int, stop: float = stop, counts: list[int] = counts) -> None:
            while time.monotonic() < stop:
                key = f"ceiling/{slot}/{counts[slot]}"
                client.put_object(bucket, key, io.BytesIO(body), len(body))
                response = client.get_object(bucket, key)
                response.read()
                response.close()
                response.release_conn()
                counts[slot] += 1

        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(loop, range(threads)))
        rates[threads] = sum(counts) / (time.monotonic() - started)
        print(f"s3 ceiling: {rates[threads]:.0f} PUT+GET pairs/s with {threads} thread(s)")
    return rates


# --- Celery ---------------------------------------------------------------------------


def start_celery_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--loglevel", "WARNING"],
        cwd=HERE,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return worker


def celery_env(servers: Servers, backend: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BENCH_BROKER=servers.rabbit.url,
        BENCH_BACKEND=backend,
        BENCH_S3_ENDPOINT=f"127.0.0.1:{servers.infra.s3_port}",
        BENCH_S3_BUCKET=servers.infra.bucket,
        PYTHONPATH=str(HERE),
    )
    return env


def run_celery(
    servers: Servers, *, name: str, backend: str, jobs: int, db_url: str | None
) -> Result:
    env = celery_env(servers, backend)
    os.environ["BENCH_S3_ENDPOINT"] = env["BENCH_S3_ENDPOINT"]
    os.environ["BENCH_S3_BUCKET"] = env["BENCH_S3_BUCKET"]
    from celery_app import make_app

    app = make_app(env["BENCH_BROKER"], backend)
    worker = start_celery_worker(env, servers.infra.workdir / f"{name}.log")
    result = Result(name, jobs)
    try:
        # A warm-up task: the worker is consuming and the backend tables exist.
        task = "noop" if db_url is None else "zip_export"
        args: tuple[Any, ...] = () if db_url is None else ("bench/source.txt", "celery/warm.zip")
        app.send_task(task, args).get(timeout=120)
        meter = CpuMeter(
            {
                "celery worker": lambda: worker.pid,
                "RabbitMQ": servers.rabbit_pid,
                "PostgreSQL": lambda: servers.pg.pid,
                "S3 server": servers.s3_pid,
            }
        )
        client_cpu = self_cpu_seconds()
        meter.start()
        started = time.monotonic()
        submitted: list[tuple[str, float]] = []
        handles = []
        for i in range(jobs):
            call_args = args if db_url is None else ("bench/source.txt", f"celery/{i}.zip")
            handle = app.send_task(task, call_args)
            submitted.append((handle.id, time.time()))
            handles.append(handle)
        if db_url is None:
            for handle in handles:
                handle.get(timeout=600)
            finished = time.monotonic()
        else:
            finished, done_at = asyncio.run(wait_celery_rows(db_url, [t for t, _ in submitted]))
            result.latencies = [
                done_at[task_id] - at for task_id, at in submitted if task_id in done_at
            ]
        result.seconds = finished - started
        result.cpu = meter.stop()
        result.cpu["benchmark client"] = self_cpu_seconds() - client_cpu
    finally:
        worker.terminate()
        worker.wait(30)
    print(f"{name}: {jobs} tasks in {result.seconds:.2f} s -> {result.rate:.0f} tasks/s")
    return result


async def wait_celery_rows(db_url: str, ids: list[str]) -> tuple[float, dict[str, float]]:
    """Wait until every task's result row is committed; returns (monotonic time, {task
    id: done epoch})."""
    conn = await asyncpg.connect(db_url)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS' "
                "AND task_id = ANY($1::text[])",
                ids,
            )
            if done >= len(ids):
                finished = time.monotonic()
                break
            await asyncio.sleep(0.02)
        rows = await conn.fetch(
            "SELECT task_id, extract(epoch FROM date_done) AS done FROM celery_taskmeta "
            "WHERE task_id = ANY($1::text[])",
            ids,
        )
        return finished, {r["task_id"]: float(r["done"]) for r in rows}
    finally:
        await conn.close()


# --- ours -----------------------------------------------------------------------------


class Ours:
    def __init__(self, servers: Servers, limits: str = "default") -> None:
        self.servers = servers
        self.stack: Stack = start_stack(
            servers.infra, ("gateway", "tracker", "export-worker"), **DEFAULTS, **LIMITS[limits]
        )
        with self.stack.client(ADMIN_KEY) as admin:
            self.key = admin.post("/api/users", json={"name": "bench"}).json()["api_key"]
        with self.client() as client:
            self.file_ids = [
                client.post("/api/files", files={"file": (f"f{i}.txt", SMALL_FILE)}).json()["id"]
                for i in range(10)
            ]
        self.db_url = servers.infra.database_url.replace("+asyncpg", "")

    def client(self) -> httpx.Client:
        return self.stack.client(self.key)

    def http(self, connections: int) -> aiohttp.ClientSession:
        """The benchmark's HTTP client: aiohttp, which costs the machine a fraction of
        what httpx does per request (the client shares the cores with the stack)."""
        return aiohttp.ClientSession(
            base_url=self.stack.gateway_url,
            headers={"Authorization": f"Bearer {self.key}"},
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    def meter(self) -> CpuMeter:
        services = self.stack.services
        return CpuMeter(
            {
                "gateway": lambda: services["gateway"].pid,
                "export-worker": lambda: services["export-worker"].pid,
                "tracker": lambda: services["tracker"].pid,
                "RabbitMQ": self.servers.rabbit_pid,
                "PostgreSQL": lambda: self.servers.pg.pid,
                "S3 server": self.servers.s3_pid,
            }
        )

    def export_body(self, i: int) -> dict[str, Any]:
        return {
            "name": f"bench-{i}",
            "file_ids": [self.file_ids[i % len(self.file_ids)]],
            "export_format": "zip",
        }

    async def _submit(self, jobs: int, concurrency: int, offset: int) -> list[int]:
        ids: list[int] = []
        queue = iter(range(offset, offset + jobs))
        async with self.http(concurrency) as client:

            async def lane() -> None:
                for i in queue:
                    async with client.post(
                        "/api/data-export/jobs", json=self.export_body(i)
                    ) as response:
                        response.raise_for_status()
                        ids.append((await response.json())["id"])

            await asyncio.gather(*(lane() for _ in range(concurrency)))
        return ids

    async def _wait_completed(self, ids: list[int], within: float) -> float:
        conn = await asyncpg.connect(self.db_url)
        try:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                done = await conn.fetchval(
                    "SELECT count(*) FROM tasks WHERE id = ANY($1::int[]) "
                    "AND status IN ('completed', 'failed', 'cancelled')",
                    ids,
                )
                if done >= len(ids):
                    return time.monotonic()
                await asyncio.sleep(0.02)
            raise TimeoutError(f"only {done} of {len(ids)} jobs finished")
        finally:
            await conn.close()

    def burst(
        self,
        jobs: int,
        concurrency: int,
        *,
        name: str = "waybill",
        offset: int = 0,
        profile: Path | None = None,
    ) -> Result:
        result = Result(name, jobs)
        profilers = self.profile(profile) if profile else []
        meter = self.meter()
        client_cpu = self_cpu_seconds()
        meter.start()
        started = time.monotonic()

        async def run() -> tuple[list[int], float, float]:
            ids = await self._submit(jobs, concurrency, offset)
            accepted = time.monotonic()
            return ids, accepted, await self._wait_completed(ids, within=1800)

        ids, accepted, finished = asyncio.run(run())
        result.seconds = finished - started
        result.cpu = meter.stop()
        for profiler in profilers:
            profiler.send_signal(2)  # py-spy writes its file on SIGINT
            profiler.wait(60)
        result.cpu["benchmark client"] = self_cpu_seconds() - client_cpu
        result.latencies, problems = asyncio.run(self._check(ids))
        result.notes.append(f"accepted {jobs / (accepted - started):.0f} creates/s")
        result.notes.extend(problems)
        print(
            f"{name}: {jobs} exports in {result.seconds:.2f} s -> {result.rate:.0f} jobs/s "
            f"(accepted at {jobs / (accepted - started):.0f}/s)"
        )
        return result

    def profile(self, directory: Path) -> list[subprocess.Popen[bytes]]:
        """py-spy on each service for the burst: collapsed stacks, one file each."""
        directory.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).parent / "py-spy"
        return [
            subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(service.pid),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",  # only Python holding the GIL: CPU, not waiting
                    "-o",
                    str(directory / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, service in self.stack.services.items()
        ]

    async def _check(self, ids: list[int]) -> tuple[list[float], list[str]]:
        """Latencies (accept -> committed completed row), and everything that is not
        exactly once: a job not completed, a second completed event, a missing
        artifact, statistics that disagree."""
        problems: list[str] = []
        conn = await asyncpg.connect(self.db_url)
        try:
            rows = await conn.fetch(
                "SELECT id, status, extract(epoch FROM updated_at - created_at) AS latency "
                "FROM tasks WHERE id = ANY($1::int[])",
                ids,
            )
            doubled = await conn.fetchval(
                "SELECT count(*) FROM (SELECT task_id FROM task_events "
                "WHERE event_type = 'completed' AND task_id = ANY($1::int[]) "
                "GROUP BY task_id HAVING count(*) > 1) d",
                ids,
            )
            keys = await conn.fetch("SELECT artifact_key FROM tasks WHERE id = ANY($1::int[])", ids)
        finally:
            await conn.close()
        not_done = [r["id"] for r in rows if r["status"] != "completed"]
        if len(rows) != len(ids) or not_done:
            problems.append(f"NOT EXACTLY ONCE: {len(not_done)} jobs not completed")
        if doubled:
            problems.append(f"NOT EXACTLY ONCE: {doubled} jobs with two completed events")
        storage = s3_client(self.servers.infra)
        stored = {
            o.object_name
            for o in storage.list_objects(self.servers.infra.bucket, "exports/", recursive=True)
        }
        missing = [r["artifact_key"] for r in keys if r["artifact_key"] not in stored]
        if missing:
            problems.append(f"{len(missing)} completed jobs without their artifact")
        with self.client() as client:
            stats = client.get("/api/data-export/statistics").json()
        if stats["by_status"].get("completed", 0) < len(ids):
            problems.append(f"statistics disagree: {stats['by_status']}")
        if not problems:
            problems.append(
                f"checked: {len(ids)} completed exactly once, artifacts present, statistics agree"
            )
        return [float(r["latency"]) for r in rows], problems

    def single(self, count: int) -> dict[str, list[float]]:
        """One job at a time: nothing else in flight. Also where the time goes, from the
        rows' own timestamps: accept -> claimed by the worker -> its completed event
        emitted -> that event committed by the tracker."""
        creates: list[float] = []
        gets: list[float] = []
        totals: list[float] = []
        ids: list[int] = []

        async def run() -> None:
            conn = await asyncpg.connect(self.db_url)
            async with self.http(1) as client:
                for i in range(count):
                    started = time.perf_counter()
                    async with client.post(
                        "/api/data-export/jobs", json=self.export_body(100_000 + i)
                    ) as response:
                        response.raise_for_status()
                        job_id = (await response.json())["id"]
                    created = time.perf_counter()
                    async with client.get(f"/api/data-export/jobs/{job_id}") as response:
                        response.raise_for_status()
                        await response.read()
                    got = time.perf_counter()
                    while True:  # polled: the pipeline has no completion signal to wait on
                        status = await conn.fetchval(
                            "SELECT status FROM tasks WHERE id = $1", job_id
                        )
                        if status == "completed":
                            break
                        await asyncio.sleep(0.001)
                    done = time.perf_counter()
                    ids.append(job_id)
                    creates.append(created - started)
                    gets.append(got - created)
                    # the GET ran inside the wait; it is not part of the pipeline's time
                    totals.append(done - started - (got - created))
            await conn.close()

        asyncio.run(run())
        stages = asyncio.run(self._stages(ids))
        print(
            f"one at a time ({count}): create p50 {1000 * pct(creates, 50):.1f} ms, "
            f"GET p50 {1000 * pct(gets, 50):.1f} ms, create -> completed p50 "
            f"{1000 * pct(totals, 50):.1f} ms p99 {1000 * pct(totals, 99):.1f} ms; stages p50: "
            + ", ".join(f"{name} {1000 * pct(v, 50):.1f} ms" for name, v in stages.items())
        )
        return {"create": creates, "get": gets, "total": totals, **stages}

    async def _stages(self, ids: list[int]) -> dict[str, list[float]]:
        conn = await asyncpg.connect(self.db_url)
        try:
            rows = await conn.fetch(
                """SELECT extract(epoch FROM t.started_at - t.created_at) AS claim,
                          extract(epoch FROM e.occurred_at - t.started_at) AS work,
                          extract(epoch FROM t.updated_at - e.occurred_at) AS record
                   FROM tasks t JOIN task_events e
                     ON e.task_id = t.id AND e.event_type = 'completed'
                   WHERE t.id = ANY($1::int[])""",
                ids,
            )
        finally:
            await conn.close()
        return {
            "accept -> claimed": [float(r["claim"]) for r in rows],
            "claimed -> completed sent": [float(r["work"]) for r in rows],
            "sent -> recorded": [float(r["record"]) for r in rows],
        }

    def big(self, count: int, mb: int) -> dict[str, float]:
        """`count` exports of one `mb` MB CSV to Parquet against the same conversions run
        bare, one after another, in a process of their own."""
        sys.path.insert(0, str(ROOT / "bench" / "conversion"))
        from run import generate_deseq  # type: ignore[import-not-found]

        data = ROOT / "bench" / ".data"
        data.mkdir(exist_ok=True)
        source = data / f"deseq-{mb}mb.csv"
        generate_deseq(source, mb)
        bare = subprocess.run(
            [sys.executable, str(HERE / "bare_conversion.py"), str(source), str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
        bare_times = [float(x) for x in bare.stdout.split()]
        with self.client() as client, source.open("rb") as f:
            file_id = client.post(
                "/api/files", files={"file": (source.name, f)}, timeout=600
            ).json()["id"]
        started = time.monotonic()
        with self.client() as client:
            ids = [
                client.post(
                    "/api/data-export/jobs",
                    json={
                        "name": f"big-{i}",
                        "file_ids": [file_id],
                        "export_format": "parquet",
                        "compress": False,
                    },
                ).json()["id"]
                for i in range(count)
            ]
        finished = asyncio.run(self._wait_completed(ids, within=3600))
        wall = finished - started
        with self.client() as client:
            jobs = [client.get(f"/api/data-export/jobs/{i}").json() for i in ids]
        statuses = {job["status"] for job in jobs}
        figures = {
            "wall": wall,
            "bare": sum(bare_times),
            "bare_each": statistics.median(bare_times),
            "s3": self._s3_transfer(source, int(jobs[0]["output_size"] or 0), count),
        }
        print(
            f"big: {count} x {mb} MB CSV -> Parquet: {wall:.1f} s through the service, "
            f"{figures['bare']:.1f} s bare (sum; median {figures['bare_each']:.2f} s each); "
            f"overhead {100 * (wall / figures['bare'] - 1):+.1f} %; statuses {sorted(statuses)}; "
            f"the S3 transfers alone (GET input + PUT output, one after another): "
            f"{figures['s3']:.1f} s"
        )
        return figures

    def _s3_transfer(self, source: Path, output_size: int, count: int) -> float:
        """What moving the bytes costs on this S3 server: `count` times, GET the input
        and PUT an object of the output's size (the service's floor, as it downloads
        the input and uploads the result)."""
        storage = s3_client(self.servers.infra)
        bucket = self.servers.infra.bucket
        storage.fput_object(bucket, "bench/big-input", str(source), part_size=16 * 1024 * 1024)
        output = source.with_suffix(".output")
        with source.open("rb") as f:
            output.write_bytes(f.read(output_size))
        started = time.monotonic()
        for i in range(count):
            storage.fget_object(bucket, "bench/big-input", str(output) + ".in")
            storage.fput_object(
                bucket, f"bench/big-output-{i}", str(output), part_size=16 * 1024 * 1024
            )
        took = time.monotonic() - started
        output.unlink()
        Path(str(output) + ".in").unlink()
        return took

    def gateway_alone(self, seconds: float, profile: Path | None = None) -> list[dict[str, Any]]:
        """Creates, then GETs, at 1, 10 and 50 clients, with the workers stopped (the
        relay still publishes every command). CPU per create is counted per process."""
        for name in ("export-worker", "tracker"):
            self.stack.services[name].terminate()
        with self.client() as client:
            job_id = client.post("/api/data-export/jobs", json=self.export_body(0)).json()["id"]
        rows: list[dict[str, Any]] = []
        for clients in (1, 10, 50):
            profilers = self.profile(profile / f"gateway-{clients}") if profile else []
            meter = self.meter()
            meter.start()
            create = wrk(
                self.stack.gateway_url, self.key, "POST", self.export_body(1), clients, seconds
            )
            asyncio.run(self._outbox_drained())
            spent = meter.stop()
            for profiler in profilers:
                profiler.send_signal(2)
                profiler.wait(60)
            created = max(create["rate"] * seconds, 1)
            create["cpu_ms"] = {
                k: 1000 * spent[k] / created for k in ("gateway", "RabbitMQ", "PostgreSQL")
            }
            get = wrk(
                self.stack.gateway_url + f"/api/data-export/jobs/{job_id}",
                self.key,
                "GET",
                None,
                clients,
                seconds,
            )
            rows.append({"clients": clients, "create": create, "get": get})
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in create["cpu_ms"].items())
            print(
                f"gateway alone, {clients} clients: {create['rate']:.0f} creates/s "
                f"(p50 {create['p50']:.1f} ms, p99 {create['p99']:.1f} ms, "
                f"{create['errors']} errors; CPU ms per create: {cpu}); "
                f"GET {get['rate']:.0f}/s p50 {get['p50']:.1f} ms p99 {get['p99']:.1f} ms"
            )
        return rows

    async def _outbox_drained(self) -> None:
        conn = await asyncpg.connect(self.db_url)
        try:
            while True:  # polled: the relay signals nothing outside its process
                if not await conn.fetchval("SELECT count(*) FROM outbox"):
                    return
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def stop(self) -> None:
        self.stack.stop()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from apt (for the gateway-alone phase)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def wrk(
    url: str, key: str, method: str, body: dict[str, Any] | None, clients: int, seconds: float
) -> dict[str, Any]:
    import json

    if method == "POST":
        url = url + "/api/data-export/jobs"
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Bearer {key}"']
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [[{json.dumps(body)}]]")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [
            ensure_wrk(),
            "-t",
            "1",
            "-c",
            str(clients),
            "-d",
            f"{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    script.unlink()

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rate": float(rate.group(1)) if rate else 0.0,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


# --- the report -----------------------------------------------------------------------


def report(
    results: list[Result],
    ceiling: dict[int, float],
    single: dict[str, list[float]] | None,
    big: dict[str, float] | None,
    gateway: list[dict[str, Any]] | None,
) -> None:
    by = {r.name: r for r in results}
    ours = by.get("waybill")
    print("\n## Burst: jobs/s, same run\n")
    print("| set-up | jobs | jobs/s | ours / it | accept -> completed p50 | p99 |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{ours.rate / r.rate:.2f}x" if ours and r.rate else "-"
        p50 = f"{1000 * pct(r.latencies, 50):.0f} ms" if r.latencies else "-"
        p99 = f"{1000 * pct(r.latencies, 99):.0f} ms" if r.latencies else "-"
        print(f"| {r.name} | {r.jobs} | {r.rate:.0f} | {ratio} | {p50} | {p99} |")
    print("\n## CPU ms per job, by process (burst)\n")
    names = ["gateway", "export-worker", "tracker", "celery worker", "RabbitMQ", "PostgreSQL"]
    print("| set-up | " + " | ".join(names) + " | sum | S3 server | benchmark client |")
    print("|---" * (len(names) + 4) + "|")
    for r in results:
        cells = [f"{r.cpu_ms_per_job(n):.2f}" if n in r.cpu else "-" for n in names]
        total = sum(r.cpu_ms_per_job(n) for n in names if n in r.cpu)
        print(
            f"| {r.name} | "
            + " | ".join(cells)
            + f" | **{total:.2f}** | {r.cpu_ms_per_job('S3 server'):.2f} | "
            f"{r.cpu_ms_per_job('benchmark client'):.2f} |"
        )
    if ceiling:
        one, eight = ceiling.get(1, 0), ceiling.get(8, 0)
        print(f"\nS3 server ceiling: {one:.0f} PUT+GET pairs/s (1 thread), {eight:.0f} (8 threads)")
        if ours:
            print(
                f"ours at {ours.rate:.0f} jobs/s (one GET + one PUT each) is "
                f"{100 * ours.rate / max(eight, 1):.0f} % of the 8-thread ceiling"
            )
    for r in results:
        for note in r.notes:
            print(f"- {r.name}: {note}")
    if single:
        print("\n## One at a time (ms)\n")
        stages = [k for k in single if k not in ("create", "get", "total")]
        print(
            "| create p50 | GET p50 | create -> completed p50 | p99 | "
            + " | ".join(f"{k} p50" for k in stages)
            + " |"
        )
        print("|---" * (4 + len(stages)) + "|")
        print(
            f"| {1000 * pct(single['create'], 50):.1f} | {1000 * pct(single['get'], 50):.1f} | "
            f"{1000 * pct(single['total'], 50):.1f} | {1000 * pct(single['total'], 99):.1f} | "
            + " | ".join(f"{1000 * pct(single[k], 50):.1f}" for k in stages)
            + " |"
        )
    if gateway:
        print("\n## The gateway alone (workers stopped), wrk\n")
        print(
            "| clients | creates/s | create p50 | create p99 | CPU ms per create "
            "(gateway / RabbitMQ / PostgreSQL) | GET/s | GET p50 | GET p99 |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for row in gateway:
            c, g = row["create"], row["get"]
            cpu = " / ".join(f"{v:.2f}" for v in c["cpu_ms"].values())
            print(
                f"| {row['clients']} | {c['rate']:.0f} | {c['p50']:.1f} ms | {c['p99']:.1f} ms | "
                f"{cpu} | {g['rate']:.0f} | {g['p50']:.1f} ms | {g['p99']:.1f} ms |"
            )
    if big:
        print(
            f"\n## Big exports\n\nservice {big['wall']:.1f} s against bare conversions "
            f"{big['bare']:.1f} s: overhead {100 * (big['wall'] / big['bare'] - 1):+.1f} %; "
            f"the S3 transfers alone took {big['s3']:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per burst")
    parser.add_argument("--noop-jobs", type=int, default=5000, help="Celery no-op tasks")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight")
    parser.add_argument("--single", type=int, default=200, help="one-at-a-time jobs")
    parser.add_argument("--big-count", type=int, default=10)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    parser.add_argument(
        "--phases",
        nargs="+",
        default=["s3", "celery-a", "celery-b", "burst", "single", "big", "gateway"],
    )
    parser.add_argument("--quick", action="store_true", help="small counts, to try it out")
    parser.add_argument(
        "--limits",
        choices=sorted(LIMITS),
        # Checked on every request, never reached: the pipeline's own speed, with the
        # cost of the checks in it. "default" measures make run's limits instead (one
        # key's burst is then held at 100 creates/s).
        default="on",
        help="rate limits and quotas: on (checked, never reached; the default), off, worst, "
        "default (make run's)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy each service during the burst into this directory"
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.noop_jobs, args.single, args.big_count, args.big_mb = 300, 1000, 50, 2, 20
        args.wrk_seconds = 2.0
    phases = set(args.phases)

    servers = Servers.start()
    results: list[Result] = []
    ceiling: dict[int, float] = {}
    single = big = gateway = None
    try:
        storage = s3_client(servers.infra)
        if not storage.bucket_exists(servers.infra.bucket):
            storage.make_bucket(servers.infra.bucket)
        storage.put_object(
            servers.infra.bucket, "bench/source.txt", io.BytesIO(SMALL_FILE), len(SMALL_FILE)
        )
        if "s3" in phases:
            ceiling = s3_ceiling(servers, 3.0)
        if "celery-a" in phases:
            results.append(
                run_celery(
                    servers,
                    name="Celery no-op, rpc",
                    backend="rpc://",
                    jobs=args.noop_jobs,
                    db_url=None,
                )
            )
        if "celery-b" in phases:
            asyncio.run(_create_db(servers.pg.admin_url, "celery_results"))
            db = servers.pg.url("celery_results", "postgresql")
            results.append(
                run_celery(
                    servers,
                    name="Celery + PostgreSQL, S3 zip",
                    backend="db+" + servers.pg.url("celery_results", "postgresql+psycopg"),
                    jobs=args.jobs,
                    db_url=db,
                )
            )
        if phases & {"burst", "single", "big", "gateway"}:
            ours = Ours(servers, args.limits)
            try:
                if "burst" in phases:
                    ours.burst(min(200, args.jobs), args.concurrency, name="warm-up")
                    results.append(
                        ours.burst(args.jobs, args.concurrency, offset=1000, profile=args.profile)
                    )
                if "single" in phases:
                    single = ours.single(args.single)
                if "big" in phases:
                    big = ours.big(args.big_count, args.big_mb)
                if "gateway" in phases:
                    gateway = ours.gateway_alone(args.wrk_seconds, args.profile)
            finally:
                ours.stop()
    finally:
        servers.stop()
    report(results, ceiling, single, big, gateway)


async def _create_db(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
