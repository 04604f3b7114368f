"""Extraction time and peak memory for generated histories: a chain (each job reads
the previous job's output) and a wide fan-out (every job reads one input), all jobs
selected. The pure domain, each size in its own process.

    uv run python bench/extraction/run.py [--sizes 1000 10000 50000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time

from waybill_shared.extraction.domain import (
    Dataset,
    ExtractionRequest,
    Job,
    JobIO,
    ProvenanceGraph,
    build_workflow,
)


def generate(n: int, shape: str) -> tuple[ProvenanceGraph, ExtractionRequest]:
    g = ProvenanceGraph()
    g.datasets[1] = Dataset(1, 1, 1, "input")
    next_id = 2
    previous = 1
    job_ids = []
    for i in range(n):
        job_id, out = next_id, next_id + 1
        next_id += 2
        source = previous if shape == "chain" else 1
        g.jobs[job_id] = Job(
            job_id,
            1,
            f"tool{i % 13}",
            "1.0",
            {"input": {"src": "hda", "id": source}, "n": i},
            (JobIO("input", "hda", source),),
            (JobIO("out", "hda", out),),
        )
        g.datasets[out] = Dataset(out, 1, i + 2, f"out{i}", creating_job_id=job_id)
        previous = out
        job_ids.append(job_id)
    return g, ExtractionRequest("bench", job_ids=tuple(job_ids), hda_ids=(1,))


def measure(n: int, shape: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    graph, request = generate(n, shape)
    started = time.perf_counter()
    document = build_workflow(graph, request)
    elapsed = time.perf_counter() - started
    size = len(json.dumps(document))
    queue.put(
        (
            elapsed,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            len(document["steps"]),
            size,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'shape':8} {'jobs':>7} {'median s':>9} {'us/job':>8} {'peak RSS MB':>12} {'steps':>7}")
    for shape in ("chain", "fan-out"):
        for n in args.sizes:
            runs = []
            for _ in range(args.repeat):
                queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
                process = multiprocessing.Process(target=measure, args=(n, shape, queue))
                process.start()
                runs.append(queue.get())
                process.join()
            runs.sort()
            elapsed, rss, steps, _ = runs[len(runs) // 2]
            print(
                f"{shape:8} {n:>7} {elapsed:>9.3f} {elapsed / n * 1e6:>8.1f} {rss:>12.0f} {steps:>7}"
            )


if __name__ == "__main__":
    main()
