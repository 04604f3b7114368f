"""Conversion throughput and peak memory, ours against pandas, DuckDB, polars and the
plain writers (h5py, xlsxwriter, openpyxl), on generated inputs: a DESeq2-like table
(gene_id, gene_name with NA, 6 statistics, padj with NA, 12 integer counts) of --mb
megabytes, and a 20,000 x 500 count matrix. Each conversion runs in its own process
with its engine imported before the clock starts (as in a running worker); peak RSS
is that process's, imports included; medians of --repeat runs; the last column is
the best baseline's time divided by ours. Never fails on time.

    uv run --group bench python bench/conversion/run.py [--mb 100] [--repeat 3]
        [--inputs deseq matrix] [--formats csv parquet json json_array hdf5 excel
         arrow orc avro netcdf filter]

`filter` is the table to Parquet keeping three columns of the rows with padj < 0.05
(export_options.columns and .filter), against the same query in polars and DuckDB.

Excel is measured on the first --excel-rows rows (a full 1 GB sheet would take
minutes per engine) and reported in cells per second as well.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".data"
Job = Callable[[Path, Path], None]


# --- inputs ---------------------------------------------------------------------------


def generate_deseq(path: Path, target_mb: int) -> None:
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


def generate_matrix(path: Path, rows: int = 20_000, columns: int = 500) -> None:
    """A count matrix: gene id, then `columns` integer sample columns."""
    if path.exists():
        return
    rng = random.Random(7)
    with path.open("w") as f:
        f.write("gene_id," + ",".join(f"sample_{j}" for j in range(columns)) + "\n")
        for i in range(rows):
            counts = ",".join(str(int(rng.expovariate(1 / 300))) for _ in range(columns))
            f.write(f"ENSG{i:011d},{counts}\n")


def head(src: Path, rows: int) -> Path:
    path = src.with_name(f"{src.stem}_head{rows}.csv")
    if not path.exists():
        with src.open() as f, path.open("w") as out:
            for n, line in enumerate(f):
                if n > rows:
                    break
                out.write(line)
    return path


# --- engines: each returns a job converting src (CSV) to dst --------------------------


FILTER_COLUMNS = ["gene_id", "log2FoldChange", "padj"]
FILTER = [{"column": "padj", "op": "<", "value": 0.05}]


def ours(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        from waybill_export_worker.conversion import convert
        from waybill_shared.export_options import parse_export_options

        options: dict[str, object] = {}
        target = fmt
        if fmt == "json_array":
            target, options = "json", {"orient": "records"}
        if fmt in ("csv", "excel"):
            options = {"formula_escape": False}  # the baselines do not escape either
        if fmt in ("hdf5", "netcdf"):
            options = {"compression": "none"}  # as the baselines write it
        if fmt == "filter":
            target, options = "parquet", {"columns": FILTER_COLUMNS, "filter": FILTER}
        convert(
            source=src,
            source_format="csv",
            target=dst,
            target_format=target,
            options=parse_export_options(target, options),
        )

    return run


def ours_gzip(fmt: str) -> Job:
    """Our HDF5 and netCDF as exports write them by default: gzip (zlib) chunks."""

    def run(src: Path, dst: Path) -> None:
        from waybill_export_worker.conversion import convert
        from waybill_shared.export_options import parse_export_options

        convert(
            source=src,
            source_format="csv",
            target=dst,
            target_format=fmt,
            options=parse_export_options(fmt, {}),
        )

    return run


def pandas_to(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        import pandas as pd

        df = pd.read_csv(src)
        {
            "csv": lambda: df.to_csv(dst, index=False),
            "parquet": lambda: df.to_parquet(dst),
            "json": lambda: df.to_json(dst, orient="records", lines=True),
            "json_array": lambda: df.to_json(dst, orient="records"),
            "hdf5": lambda: df.to_hdf(dst, key="table", format="table"),
            "excel": lambda: df.to_excel(dst, index=False, engine="xlsxwriter"),
        }[fmt]()

    return run


def duckdb_to(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        import duckdb

        option = {
            "csv": "(FORMAT csv)",
            "parquet": "(FORMAT parquet, COMPRESSION snappy)",
            "json": "(FORMAT json)",
            "json_array": "(FORMAT json, ARRAY true)",
            "filter": "(FORMAT parquet, COMPRESSION snappy)",
        }[fmt]
        query = f"SELECT * FROM read_csv_auto('{src}')"
        if fmt == "filter":
            query = f"SELECT {', '.join(FILTER_COLUMNS)} FROM read_csv_auto('{src}', nullstr = 'NA') WHERE padj < 0.05"
        duckdb.sql(f"COPY ({query}) TO '{dst}' {option}")

    return run


def polars_to(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        import polars as pl

        lazy = pl.scan_csv(src)
        if fmt == "filter":
            lazy = pl.scan_csv(src, null_values=["NA"])
            lazy = lazy.filter(pl.col("padj") < 0.05).select(FILTER_COLUMNS)
        {
            "csv": lambda: lazy.sink_csv(dst),
            "parquet": lambda: lazy.sink_parquet(dst),
            "json": lambda: lazy.sink_ndjson(dst),
            "json_array": lambda: lazy.collect().write_json(dst),
            "filter": lambda: lazy.sink_parquet(dst),
            "arrow": lambda: lazy.sink_ipc(dst, compression="lz4"),
            # polars has no streaming Avro writer: the table in memory, then written.
            "avro": lambda: lazy.collect().write_avro(dst),
        }[fmt]()

    return run


def _arrow_batches(src: Path) -> Iterator[object]:
    import pyarrow.csv as pacsv

    yield from pacsv.open_csv(src)


def pyarrow_h5py(fmt: str) -> Job:
    """The obvious hand-written HDF5 path: the whole table in memory, one dataset per
    column (strings as UTF-8 variable length)."""

    def run(src: Path, dst: Path) -> None:
        import h5py
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(src)
        with h5py.File(dst, "w") as f:
            for i, name in enumerate(table.column_names):
                column = table.column(name)
                if column.type == "string":
                    values = column.to_pylist()
                    data = ["" if v is None else v for v in values]
                    f.create_dataset(str(i), data=data, dtype=h5py.string_dtype())
                else:
                    f.create_dataset(str(i), data=column.to_numpy())

    return run


def pyarrow_streaming(fmt: str) -> Job:
    """pyarrow's streaming CSV reader into its own writer, batch by batch, the same
    compression as ours by default."""

    def run(src: Path, dst: Path) -> None:
        import pyarrow as pa
        import pyarrow.orc as orc

        reader = _arrow_batches(src)
        first = next(reader)
        if fmt == "arrow":
            writer = pa.ipc.new_file(
                str(dst),
                first.schema,
                options=pa.ipc.IpcWriteOptions(compression="lz4"),  # type: ignore[attr-defined]
            )
            write = writer.write_batch
        else:
            writer = orc.ORCWriter(str(dst), compression="zstd")

            def write(batch: object) -> None:
                writer.write(pa.Table.from_batches([batch]))  # type: ignore[list-item]

        write(first)
        for batch in reader:
            write(batch)
        writer.close()

    return run


def xarray_netcdf(fmt: str) -> Job:
    """The usual netCDF path: pandas reads the table, xarray writes it with netCDF4."""

    def run(src: Path, dst: Path) -> None:
        import pandas as pd
        import xarray as xr

        xr.Dataset.from_dataframe(pd.read_csv(src)).to_netcdf(dst, engine="netcdf4")

    return run


def xlsxwriter_constant_memory(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        import xlsxwriter

        book = xlsxwriter.Workbook(str(dst), {"constant_memory": True})
        sheet = book.add_worksheet("data")
        row = 0
        for batch in _arrow_batches(src):
            if row == 0:
                sheet.write_row(0, 0, batch.schema.names)  # type: ignore[attr-defined]
                row = 1
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):  # type: ignore[attr-defined]
                sheet.write_row(row, 0, values)
                row += 1
        book.close()

    return run


def openpyxl_write_only(fmt: str) -> Job:
    def run(src: Path, dst: Path) -> None:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("data")
        first = True
        for batch in _arrow_batches(src):
            if first:
                sheet.append(batch.schema.names)  # type: ignore[attr-defined]
                first = False
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):  # type: ignore[attr-defined]
                sheet.append(values)
        book.save(dst)

    return run


ENGINES: dict[str, dict[str, Callable[[str], Job]]] = {
    "csv": {"waybill": ours, "pandas": pandas_to, "duckdb": duckdb_to, "polars": polars_to},
    "parquet": {"waybill": ours, "pandas": pandas_to, "duckdb": duckdb_to, "polars": polars_to},
    "json": {"waybill": ours, "pandas": pandas_to, "duckdb": duckdb_to, "polars": polars_to},
    "json_array": {
        "waybill": ours,
        "pandas": pandas_to,
        "duckdb": duckdb_to,
        "polars": polars_to,
    },
    "hdf5": {
        "waybill": ours,
        "waybill+gzip": ours_gzip,
        "pandas": pandas_to,
        "pyarrow+h5py": pyarrow_h5py,
    },
    "excel": {
        "waybill": ours,
        "xlsxwriter": xlsxwriter_constant_memory,
        "openpyxl": openpyxl_write_only,
        "pandas": pandas_to,
    },
    "arrow": {"waybill": ours, "polars": polars_to, "pyarrow": pyarrow_streaming},
    "orc": {"waybill": ours, "pyarrow": pyarrow_streaming},
    "avro": {"waybill": ours, "polars": polars_to},
    "netcdf": {"waybill": ours, "waybill+gzip": ours_gzip, "xarray": xarray_netcdf},
    "filter": {"waybill": ours, "duckdb": duckdb_to, "polars": polars_to},
}


# --- measuring ------------------------------------------------------------------------


# Imported before the clock starts, as they are in a running worker (ours costs ~0.45 s
# of imports here: on a 100 MB file that would be half the time measured).
PRELOAD = {
    "waybill": ["waybill_export_worker.conversion", "waybill_shared.export_options"],
    "waybill+gzip": ["waybill_export_worker.conversion", "waybill_shared.export_options"],
    "pandas": ["pandas", "pyarrow.parquet", "xlsxwriter", "tables"],
    "duckdb": ["duckdb"],
    "polars": ["polars"],
    "pyarrow+h5py": ["pyarrow.csv", "h5py"],
    "xlsxwriter": ["pyarrow.csv", "xlsxwriter"],
    "openpyxl": ["pyarrow.csv", "openpyxl"],
    "pyarrow": ["pyarrow.csv", "pyarrow.orc"],
    "xarray": ["pandas", "xarray", "netCDF4"],
}


def _child(
    job: Job,
    preload: list[str],
    src: Path,
    dst: Path,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    for module in preload:
        importlib.import_module(module)
    started = time.perf_counter()
    job(src, dst)
    queue.put(
        (time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    )


def run_once(job: Job, preload: list[str], src: Path, dst: Path) -> tuple[float, float] | None:
    """Seconds and peak RSS (MB) of one conversion in its own process; None if the
    engine failed (it is reported, not hidden)."""
    # Start every engine on a quiet disk: the previous engine's output (up to 1 GB) is
    # otherwise still being written back while the next one runs.
    os.sync()
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=_child, args=(job, preload, src, dst, queue))
    process.start()
    process.join()
    dst.unlink(missing_ok=True)
    if process.exitcode != 0 or queue.empty():
        return None
    elapsed, peak = queue.get()
    return elapsed, peak


def cell_count(src: Path) -> int:
    with src.open() as f:
        columns = len(f.readline().split(","))
        rows = sum(1 for _ in f)
    return rows * columns


def bench_format(fmt: str, src: Path, repeat: int) -> None:
    size_mb = src.stat().st_size / 1024 / 1024
    cells = cell_count(src) if fmt == "excel" else 0
    # Round-robin over the engines, `repeat` rounds: a slow spell of a noisy machine
    # (or the disk still writing back the previous engine's output) falls on every
    # engine alike instead of on whichever ran then.
    runs: dict[str, list[tuple[float, float]] | None] = {engine: [] for engine in ENGINES[fmt]}
    for _ in range(repeat):
        for engine, make in ENGINES[fmt].items():
            done = runs[engine]
            if done is None:
                continue
            result = run_once(make(fmt), PRELOAD[engine], src, DATA / f"out-{engine}.{fmt}")
            if result is None:
                runs[engine] = None
            else:
                done.append(result)
    # The median time and the largest peak RSS of each engine.
    results: dict[str, tuple[float, float] | None] = {
        engine: None
        if done is None
        else (statistics.median(t for t, _ in done), max(p for _, p in done))
        for engine, done in runs.items()
    }

    def show(engine: str) -> str:
        result = results[engine]
        if result is None:
            return f"{engine} FAILED"
        seconds, peak = result
        rate = f"{cells / seconds / 1000:.0f} k cells/s" if cells else f"{size_mb / seconds:.0f}"
        return f"{engine} {rate} ({peak:.0f})"

    ours_result = results["waybill"]
    speeds = [r[0] for k, r in results.items() if "waybill" not in k and r is not None]
    ratio = (
        f"  -> waybill / best = {min(speeds) / ours_result[0]:.2f}"
        if ours_result is not None and speeds
        else ""
    )
    print(f"{fmt:10} " + "  ".join(show(e) for e in results) + ratio, flush=True)


def zip_deflate(src: Path) -> None:
    """ZIP packing: our packager (ISA-L deflate) against stdlib zlib, same input."""
    import zipfile

    from waybill_export_worker.conversion.archive import ZipPackager

    size = src.stat().st_size / 1024 / 1024
    out = DATA / "bench.zip"
    started = time.perf_counter()
    with ZipPackager(out) as packager:
        packager.add("table.csv", src)
    ours_rate = size / (time.perf_counter() - started)
    ours_ratio = src.stat().st_size / out.stat().st_size
    started = time.perf_counter()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(src, "table.csv")
    zlib_rate = size / (time.perf_counter() - started)
    zlib_ratio = src.stat().st_size / out.stat().st_size
    out.unlink()
    print(
        f"zip        waybill (isal) {ours_rate:.0f} MB/s ratio {ours_ratio:.2f}  stdlib zlib "
        f"{zlib_rate:.0f} MB/s ratio {zlib_ratio:.2f}  -> {ours_rate / zlib_rate:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--excel-rows", type=int, default=100_000)
    parser.add_argument("--inputs", nargs="+", default=["deseq", "matrix"])
    parser.add_argument("--formats", nargs="+", default=list(ENGINES))
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    for name in args.inputs:
        if name == "deseq":
            src = DATA / f"deseq_{args.mb}mb.csv"
            generate_deseq(src, args.mb)
        else:
            src = DATA / "matrix_20000x500.csv"
            generate_matrix(src)
        print(
            f"\ninput: {src.name}, {src.stat().st_size / 1024 / 1024:.0f} MB; medians of "
            f"{args.repeat}; MB/s of input (peak RSS MB); ratio = best baseline time / ours"
        )
        for fmt in args.formats:
            if fmt == "filter" and name != "deseq":
                continue  # its columns are the table's
            bench_format(fmt, head(src, args.excel_rows) if fmt == "excel" else src, args.repeat)
        if name == "deseq":
            # In a process of its own, as every conversion: importing our packager
            # starts polars' and jemalloc's threads, and a process forked later from
            # one holding them can deadlock (a matrix conversion hung there).
            process = multiprocessing.Process(target=zip_deflate, args=(src,))
            process.start()
            process.join()


if __name__ == "__main__":
    main()
