"""Streaming format conversion, pure (no broker, database or storage code): a tabular
file is read as record batches with one schema, its columns selected and rows filtered
(`selection`), and written to csv, tsv, json, excel, parquet, hdf5, arrow, orc, avro or
netcdf. Engine choices and figures: services/export-worker/CONVERSION.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion import polars_engine
from waybill_export_worker.conversion.errors import ConversionCancelled, ConversionError, Restart
from waybill_export_worker.conversion.pipeline import ReadAhead
from waybill_export_worker.conversion.readers import open_reader
from waybill_export_worker.conversion.readers.csv_source import CsvSource
from waybill_export_worker.conversion.selection import Selection
from waybill_export_worker.conversion.sink import Sink
from waybill_export_worker.conversion.writers import WRITERS, open_sink
from waybill_shared.export_options import ExportOptions
from waybill_shared.formats import detect_format

_SUFFIX = {
    "csv": "csv",
    "tsv": "tsv",
    "json": "json",
    "excel": "xlsx",
    "parquet": "parquet",
    "hdf5": "h5",
    "arrow": "arrow",
    "orc": "orc",
    "avro": "avro",
    "netcdf": "nc",
}
TABULAR_OUTPUTS = tuple(WRITERS)
CSV_INPUTS = ("csv", "tsv", "text")
MAX_RESTARTS = 64

__all__ = [
    "TABULAR_OUTPUTS",
    "ConversionCancelled",
    "ConversionError",
    "ConversionResult",
    "convert",
    "detect_format",
    "output_filename",
]


@dataclass
class ConversionResult:
    rows: int  # written: those the filter passed
    columns: int  # written
    warnings: list[str] = field(default_factory=list)
    bytes_read: int = 0
    rows_read: int = 0


def output_filename(stem: str, target_format: str) -> str:
    return f"{stem}.{_SUFFIX[target_format]}"


def convert(
    *,
    source: Path,
    source_format: str,
    target: Path,
    target_format: str,
    options: ExportOptions,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ConversionResult:
    if target_format not in TABULAR_OUTPUTS:
        raise ConversionError(f"unknown output format {target_format!r}")
    read = {"bytes": 0}

    def on_read(n: int) -> None:
        if n <= read["bytes"]:  # a restart reads from the start again: never go back
            return
        read["bytes"] = n
        if on_progress is not None:
            on_progress(n)

    read_warnings: list[str] = []
    if source_format in CSV_INPUTS:
        csv_source = CsvSource(
            source,
            delimiter="\t" if source_format == "tsv" else ",",
            on_read=on_read,
            should_stop=should_stop,
        )
        if polars_engine.supports(csv_source, target_format, options):
            warnings: list[str] = []
            rows_read, rows = polars_engine.convert_csv(
                csv_source,
                target,
                target_format,
                options,
                on_read=on_read,
                should_stop=should_stop,
                warnings=warnings,
            )
            columns = getattr(options, "columns", None) or csv_source.names
            return ConversionResult(
                rows=rows,
                columns=len(columns),
                warnings=warnings,
                bytes_read=csv_source.size,
                rows_read=rows_read,
            )
        schema_of, batches = (lambda: csv_source.schema), csv_source.batches
        if csv_source.encoding != "utf-8":
            read_warnings.append(f"the file is not UTF-8: read as {csv_source.encoding} text")
    else:
        schema_of, batches = open_reader(source, source_format, on_read)

    for _ in range(MAX_RESTARTS):
        warnings = list(read_warnings)
        schema = schema_of()
        selection = _selection(schema, options)
        stream_of = batches() if selection is None else selection.apply(batches())
        written = schema if selection is None else selection.schema_of(schema)
        # Reading (and filtering) starts while the sink is opened.
        with ReadAhead(stream_of) as stream:
            try:
                rows = _write(
                    stream,
                    open_sink(target, target_format, written, options, warnings),
                    should_stop,
                )
            except Restart:
                target.unlink(missing_ok=True)
                continue
        return ConversionResult(
            rows=rows,
            columns=len(written),
            warnings=warnings,
            bytes_read=read["bytes"],
            rows_read=rows if selection is None else selection.rows_read,
        )
    raise ConversionError("the column types kept changing; giving up")


def _selection(schema: pa.Schema, options: ExportOptions) -> Selection | None:
    """The selection and filter for this schema; None when the options keep everything."""
    if getattr(options, "columns", None) is None and getattr(options, "filter", None) is None:
        return None
    # Not schema.empty_table(): it makes pyarrow import pandas (see CONVERSION.md).
    typed = pl.from_arrow(
        pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)
    )
    assert isinstance(typed, pl.DataFrame)
    return Selection(dict(typed.schema), options)


def _write(
    stream: Iterable[pa.RecordBatch], sink: Sink, should_stop: Callable[[], bool] | None
) -> int:
    """Everything `stream` yields into `sink`, which is closed whatever happens;
    returns the number of rows."""
    step = sink.rows_per_write
    rows = 0
    try:
        for block in stream:
            # Slices keep a cancel (checked between them) within a fraction of a second.
            for offset in range(0, max(block.num_rows, 1), step):
                if should_stop is not None and should_stop():
                    raise ConversionCancelled
                batch = block.slice(offset, step)
                sink.write(batch)
                rows += batch.num_rows
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
        UnicodeDecodeError,
    ) as exc:
        raise ConversionError(f"cannot convert: {exc}") from exc
    finally:
        sink.close()
    return rows
