"""Conversion throughput and peak memory, ours against pandas, DuckDB and polars, on
a generated DESeq2-like table. Each conversion runs in its own process (peak RSS is
that process's); medians of --repeat runs; ratios against the best baseline.

    uv run python bench/conversion/run.py [--mb 100] [--repeat 3] [--formats csv parquet json ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".data"


def generate(path: Path, target_mb: int) -> None:
    """gene_id, gene_name (with NA), baseMean, log2FoldChange, lfcSE, stat, pvalue,
    padj (with NA), 12 integer count columns; deterministic."""
    if path.exists() and path.stat().st_size >= target_mb * 1024 * 1024 * 0.95:
        return
    rng = random.Random(42)
    header = "gene_id,gene_name,baseMean,log2FoldChange,lfcSE,stat,pvalue,padj," + ",".join(
        f"count_{i}" for i in range(12)
    )
    with path.open("w") as f:
        f.write(header + "\n")
        i = 0
        while f.tell() < target_mb * 1024 * 1024:
            lines = []
            for _ in range(10_000):
                name = "NA" if rng.random() < 0.1 else f"GENE{i}"
                padj = "NA" if rng.random() < 0.15 else repr(rng.random() ** 8)
                counts = ",".join(str(rng.randint(0, 5000)) for _ in range(12))
                lines.append(
                    f"ENSG{i:011d},{name},{rng.uniform(0, 1e4)!r},{rng.gauss(0, 2)!r},{rng.random()!r},"
                    f"{rng.gauss(0, 5)!r},{rng.random() ** 10!r},{padj},{counts}"
                )
                i += 1
            f.write("\n".join(lines) + "\n")


def ours(fmt: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        from waybill_export_worker.conversion import convert
        from waybill_shared.export_options import parse_export_options

        convert(
            source=src,
            source_format="csv",
            target=dst,
            target_format=fmt,
            options=parse_export_options(
                fmt, {"formula_escape": False} if fmt in ("csv", "excel") else {}
            ),
        )

    return run


def pandas_to(fmt: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        import pandas as pd

        df = pd.read_csv(src)
        {
            "csv": lambda: df.to_csv(dst, index=False),
            "parquet": lambda: df.to_parquet(dst),
            "json": lambda: df.to_json(dst, orient="records", lines=True),
        }[fmt]()

    return run


def duckdb_to(fmt: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        import duckdb

        option = {
            "csv": "(FORMAT csv)",
            "parquet": "(FORMAT parquet, COMPRESSION snappy)",
            "json": "(FORMAT json)",
        }[fmt]
        duckdb.sql(f"COPY (SELECT * FROM read_csv_auto('{src}')) TO '{dst}' {option}")

    return run


def polars_to(fmt: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        import polars as pl

        lazy = pl.scan_csv(src)
        {
            "csv": lambda: lazy.sink_csv(dst),
            "parquet": lambda: lazy.sink_parquet(dst),
            "json": lambda: lazy.sink_ndjson(dst),
        }[fmt]()

    return run


def _child(
    job: Callable[[Path, Path], None], src: Path, dst: Path, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    started = time.perf_counter()
    job(src, dst)
    queue.put(
        (time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    )


def measure(
    job: Callable[[Path, Path], None], src: Path, dst: Path, repeat: int
) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(repeat):
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        process = multiprocessing.Process(target=_child, args=(job, src, dst, queue))
        process.start()
        elapsed, peak = queue.get()
        process.join()
        times.append(elapsed)
        peaks.append(peak)
        dst.unlink(missing_ok=True)
    return statistics.median(times), max(peaks)


def zip_deflate(src: Path) -> None:
    """ZIP packing: our packager (ISA-L deflate) against stdlib zlib, same input."""
    import zipfile

    from waybill_export_worker.conversion.archive import ZipPackager

    size = src.stat().st_size / 1024 / 1024
    out = DATA / "bench.zip"
    started = time.perf_counter()
    with ZipPackager(out) as packager:
        packager.add_file("table.csv", src)
    ours_rate, ours_ratio = (
        size / (time.perf_counter() - started),
        src.stat().st_size / out.stat().st_size,
    )
    started = time.perf_counter()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(src, "table.csv")
    zlib_rate, zlib_ratio = (
        size / (time.perf_counter() - started),
        src.stat().st_size / out.stat().st_size,
    )
    out.unlink()
    print(
        f"zip      waybill (isal) {ours_rate:.0f} MB/s ratio {ours_ratio:.2f}  stdlib zlib {zlib_rate:.0f} MB/s "
        f"ratio {zlib_ratio:.2f}  -> {ours_rate / zlib_rate:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet", "json", "hdf5", "excel"])
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    src = DATA / f"deseq_{args.mb}mb.csv"
    generate(src, args.mb)
    size_mb = src.stat().st_size / 1024 / 1024
    print(
        f"input: {src.name}, {size_mb:.0f} MB; medians of {args.repeat}; MB/s of input (peak RSS MB)"
    )
    engines: dict[str, Callable[[str], Callable[[Path, Path], None]]] = {
        "waybill": ours,
        "pandas": pandas_to,
        "duckdb": duckdb_to,
        "polars": polars_to,
    }
    for fmt in args.formats:
        results = {}
        for engine, make in engines.items():
            if engine != "waybill" and fmt in ("hdf5", "excel"):
                continue
            dst = DATA / f"out-{engine}.{fmt}"
            elapsed, peak = measure(make(fmt), src, dst, args.repeat)
            results[engine] = (size_mb / elapsed, peak)
        best = max((v[0] for k, v in results.items() if k != "waybill"), default=None)
        line = "  ".join(f"{k} {v[0]:.0f} ({v[1]:.0f})" for k, v in results.items())
        ratio = f"  -> waybill / best baseline = {results['waybill'][0] / best:.2f}" if best else ""
        print(f"{fmt:8} {line}{ratio}")
    zip_deflate(src)


if __name__ == "__main__":
    main()
