"""CSV/TSV to csv, tsv, JSON Lines or Parquet with polars' streaming engine end to end:
the fastest engine measured here (bench/conversion/run.py).

polars reads the file as `readers.CsvSource.scan` sets it up (our types and NA
pinned; a value that does not fit widens its column and the file is converted
again, as on the general path); this module adds the output's own rules and polars'
sinks. Progress and cancel ride on a per-batch callback inside the stream (polars
cannot say how many bytes it has read, so progress is rows times the sample's bytes
per row).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

import polars as pl

from waybill_export_worker.conversion.errors import ConversionCancelled, ConversionError
from waybill_export_worker.conversion.readers import CsvSource
from waybill_export_worker.conversion.writers import FORMULA, NUMBER
from waybill_shared.export_options import CsvOptions, ExportOptions, JsonOptions, ParquetOptions

MAX_RESTARTS = 64


def supports(target_format: str, options: ExportOptions) -> bool:
    """The outputs and options this engine writes exactly as the general path's
    writers would; the rest (Excel, HDF5, other encodings, use_dictionary=false...)
    go that way."""
    if target_format in ("csv", "tsv") and isinstance(options, CsvOptions):
        return (
            options.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
            and options.delimiter.isascii()
            and options.quote_char.isascii()
        )
    if target_format == "json" and isinstance(options, JsonOptions):
        return True
    if target_format == "parquet" and isinstance(options, ParquetOptions):
        return options.use_dictionary
    return False


def convert_csv(
    source: CsvSource,
    target: Path,
    target_format: str,
    options: ExportOptions,
    *,
    on_read: Callable[[int], None],
    should_stop: Callable[[], bool] | None,
) -> int:
    """Convert; returns the number of rows written. A value that does not fit its
    column (an NA marker not met before, a wider type) and the file is converted
    again (`CsvSource.learn`)."""
    for _ in range(MAX_RESTARTS):
        try:
            return _convert_once(source, target, target_format, options, on_read, should_stop)
        except pl.exceptions.ComputeError as exc:
            target.unlink(missing_ok=True)
            source.learn(exc)
    raise ConversionError("the column types kept changing; giving up")


def _convert_once(
    source: CsvSource,
    target: Path,
    target_format: str,
    options: ExportOptions,
    on_read: Callable[[int], None],
    should_stop: Callable[[], bool] | None,
) -> int:
    lazy = source.scan()
    lazy = lazy.with_columns(_output_expressions(lazy.collect_schema(), target_format, options))
    rows = 0
    state = {"cancelled": False}

    def observe(batch: pl.DataFrame) -> pl.DataFrame:
        nonlocal rows
        if should_stop is not None and should_stop():
            state["cancelled"] = True
            raise ConversionCancelled
        rows += batch.height
        on_read(source.progress(rows))
        return batch

    lazy = lazy.map_batches(observe, streamable=True, schema=lazy.collect_schema())
    try:
        # polars streams morsels of ~1.3 MB of input (80 per 100 MB here): the step of
        # progress and cancel.
        _sink(lazy, target, options)
    except Exception:
        if state["cancelled"]:
            target.unlink(missing_ok=True)
            raise ConversionCancelled from None
        raise
    on_read(source.size)
    return rows


def _output_expressions(
    schema: pl.Schema, target_format: str, options: ExportOptions
) -> list[pl.Expr]:
    """Spreadsheet safety for CSV text, and null for infinity in JSON (JSON has no
    such number), vectorised. NA is null already (`CsvSource.scan`)."""
    expressions = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype == pl.String and isinstance(options, CsvOptions) and options.formula_escape:
            risky = column.str.contains(FORMULA) & ~column.str.contains(NUMBER)
            expressions.append(
                pl.when(risky).then(pl.lit("'") + column).otherwise(column).alias(name)
            )
        elif dtype == pl.Float64 and target_format == "json":
            expressions.append(pl.when(column.is_finite()).then(column).otherwise(None).alias(name))
    return expressions


def _sink(lazy: pl.LazyFrame, target: Path, options: ExportOptions) -> None:
    if isinstance(options, CsvOptions):
        lazy.sink_csv(
            target,
            separator=options.delimiter,
            quote_char=options.quote_char,
            include_header=options.include_header,
            null_value="",
        )
    elif isinstance(options, JsonOptions) and options.orient == "lines":
        lazy.sink_ndjson(target)
    elif isinstance(options, JsonOptions):
        with JsonArrayFile(target) as array:
            lazy.sink_ndjson(cast(IO[bytes], array))
    elif isinstance(options, ParquetOptions):
        lazy.sink_parquet(
            target,
            compression="uncompressed" if options.compression == "none" else options.compression,
            row_group_size=options.row_group_size,
        )
    else:  # supports() keeps other formats away
        raise ConversionError(f"polars engine cannot write {type(options).__name__}")


class JsonArrayFile:
    """A binary file that turns the JSON Lines written into it into one JSON array,
    as it streams: in JSON Lines a raw newline only ever ends a record (newlines in
    strings are escaped), so each becomes a separator. Output as JsonSink writes it:
    "[", then records separated by ",\n", then "]"."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.file.write(b"[")
        self.records = False
        self.separator_pending = False  # a record ended; "," only if another follows

    def write(self, data: bytes) -> int:
        # One copy per chunk (the replace; polars writes ~5 MB at a time): slicing and
        # concatenating as well made JSON arrays 60% slower than JSON Lines.
        chunk = bytes(data)  # no copy when polars hands over bytes
        if not chunk:
            return 0
        self.file.write(b",\n" if self.separator_pending else b"" if self.records else b"\n")
        self.records = True
        self.separator_pending = chunk.endswith(b"\n")
        separated = chunk.replace(b"\n", b",\n")
        # A final newline became ",\n": the separator waits until another record comes.
        self.file.write(memoryview(separated)[:-2] if self.separator_pending else separated)
        return len(data)

    def flush(self) -> None:
        self.file.flush()

    def __enter__(self) -> JsonArrayFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.file.write(b"\n]\n" if self.records else b"]\n")
        self.file.close()
