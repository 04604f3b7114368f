"""CSV/TSV to csv, tsv, JSON Lines, Parquet or Arrow IPC with polars' streaming engine end to end:
the fastest engine measured here (bench/conversion/run.py), 2-3x the pyarrow path.

The types are ours, not polars': the schema `csv_source.CsvSource` inferred (ids with
leading zeros stay text, NA markers are null) is pinned, and a later value that does
not fit makes polars fail with the column named; that column is widened and the file
converted again, exactly as on the pyarrow path. Progress and cancel ride on a
per-batch callback inside the stream (polars cannot say how many bytes it has read,
so progress is rows times the sample's bytes per row). The column selection and row
filter are part of the query: polars reads only the columns they need.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionCancelled, ConversionError
from waybill_export_worker.conversion.readers.csv_inference import NULLS, SIGNED_INTEGER
from waybill_export_worker.conversion.readers.csv_source import CsvSource
from waybill_export_worker.conversion.selection import Selection
from waybill_export_worker.conversion.writers.formulas import FORMULA, NUMBER
from waybill_shared.export_options import (
    ArrowOptions,
    AvroOptions,
    CsvOptions,
    ExportOptions,
    JsonOptions,
    ParquetOptions,
)

_PARSE_ERROR = re.compile(
    r"could not parse `(.*)` as dtype `([^`]+)` at column .*\(column number (\d+)\)", re.DOTALL
)
_TYPES = {pa.int64(): pl.Int64(), pa.float64(): pl.Float64(), pa.bool_(): pl.Boolean()}
MAX_RESTARTS = 64
# polars sizes its CSV read chunks by the size of the file, and holds several in
# flight: its memory grew with the input (210 MB at 100 MB, 365 MB at 1 GB). Fixed
# 4 MiB chunks keep it flat (~155 MB at either size) at the same speed. polars reads
# the variable at each scan; an operator's own setting wins.
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(4 * 1024 * 1024))


def supports(source: CsvSource, target_format: str, options: ExportOptions) -> bool:
    """Files with rows, in UTF-8 (the only encoding polars reads), and the outputs
    and options this engine writes exactly as the pyarrow path would; the rest
    (Excel, HDF5, other encodings, use_dictionary=false...) go that way."""
    if source.sample_rows == 0 or source.encoding != "utf-8":
        return False
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
    if target_format == "avro" and isinstance(options, AvroOptions):
        return True
    return target_format == "arrow" and isinstance(options, ArrowOptions)


def convert_csv(
    source: CsvSource,
    target: Path,
    target_format: str,
    options: ExportOptions,
    *,
    on_read: Callable[[int], None],
    should_stop: Callable[[], bool] | None,
    warnings: list[str],
) -> tuple[int, int]:
    """Convert; returns the number of rows read and written (the sink's warnings go
    to `warnings`).

    polars checks every field against every null marker it is given (all nine cost
    ~30% of its speed), so it gets only the markers the sample used; string columns
    map the others to null afterwards, and a number or boolean column meeting a new
    marker makes it one more null value and the file is read again."""
    markers = set(source.null_markers) | {""}
    for _ in range(MAX_RESTARTS):
        try:
            del warnings[:]  # the last attempt's only
            return _convert_once(
                source,
                target,
                target_format,
                options,
                sorted(markers),
                on_read,
                should_stop,
                warnings,
            )
        except pl.exceptions.ComputeError as exc:
            target.unlink(missing_ok=True)
            _learn_marker_or_widen(source, markers, exc)
    raise ConversionError("the column types kept changing; giving up")


def _learn_marker_or_widen(source: CsvSource, markers: set[str], exc: Exception) -> None:
    message = str(exc)
    match = _PARSE_ERROR.search(message)
    if "is not properly escaped" in message:  # pyarrow reads such a field to the end
        column = match and f" (column {source.names[int(match.group(3)) - 1]!r})"
        raise ConversionError(
            f"unreadable table: a quoted field is never closed{column or ''}"
        ) from exc
    if match is None:
        raise ConversionError(f"unreadable table: {message.splitlines()[0]}") from exc
    value, column = match.group(1), source.names[int(match.group(3)) - 1]
    if value in NULLS and value not in markers:
        markers.add(value)
        return
    source.widen(column, overflow=bool(SIGNED_INTEGER.match(value)), reason=message.splitlines()[0])


def _convert_once(
    source: CsvSource,
    target: Path,
    target_format: str,
    options: ExportOptions,
    markers: list[str],
    on_read: Callable[[int], None],
    should_stop: Callable[[], bool] | None,
    warnings: list[str],
) -> tuple[int, int]:
    schema: dict[str, pl.DataType] = {
        name: _TYPES.get(t, pl.String()) for name, t in source.types.items()
    }
    # The filter is compiled against this attempt's types (a widening may change them).
    selection = Selection(schema, options)
    lazy = pl.scan_csv(
        source.path,
        schema=schema,
        separator=source.delimiter,
        has_header=True,
        null_values=markers,
        encoding="utf8",
    )
    if selection.narrows:  # polars then parses only these columns
        lazy = lazy.select(selection.needed)
    state = {"cancelled": False}

    def observe(batch: pl.DataFrame) -> pl.DataFrame:
        if should_stop is not None and should_stop():
            state["cancelled"] = True
            raise ConversionCancelled
        selection.rows_read += batch.height
        on_read(min(int(selection.rows_read * source.bytes_per_row), source.size))
        return batch

    def count_written(batch: pl.DataFrame) -> pl.DataFrame:
        selection.rows_written += batch.height
        return batch

    lazy = lazy.map_batches(observe, streamable=True, schema=lazy.collect_schema())
    needed = {name: schema[name] for name in selection.needed}
    if selection.predicate is not None:
        # The filter sees values as written: NA markers null, before any escaping.
        lazy = lazy.with_columns(_na_expressions(needed)).filter(selection.predicate)
        lazy = lazy.map_batches(count_written, streamable=True, schema=lazy.collect_schema())
    lazy = lazy.with_columns(
        _output_expressions(needed, target_format, options, na=selection.predicate is None)
    )
    if selection.reorders:
        lazy = lazy.select(selection.columns)
    try:
        # polars streams morsels of ~1.3 MB of input (80 per 100 MB here): the step of
        # progress and cancel.
        _sink(lazy, target, options, warnings)
    except Exception:
        if state["cancelled"]:
            target.unlink(missing_ok=True)
            raise ConversionCancelled from None
        raise
    on_read(source.size)
    if selection.predicate is None:
        selection.rows_written = selection.rows_read
    return selection.rows_read, selection.rows_written


def _na_text(column: pl.Expr) -> pl.Expr:
    """NA markers polars was not given (see convert_csv) are null all the same."""
    return pl.when(column.is_in(NULLS)).then(None).otherwise(column)


def _na_expressions(schema: dict[str, pl.DataType]) -> list[pl.Expr]:
    return [_na_text(pl.col(n)).alias(n) for n, t in schema.items() if t == pl.String]


def _output_expressions(
    schema: dict[str, pl.DataType], target_format: str, options: ExportOptions, *, na: bool
) -> list[pl.Expr]:
    """NA markers in text (`na`: unless done before the filter), spreadsheet safety
    for CSV text, and NaN as NA in CSV, vectorised."""
    expressions = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype == pl.String:
            if na:
                column = _na_text(column)
            if isinstance(options, CsvOptions) and options.formula_escape:
                risky = column.str.contains(FORMULA) & ~column.str.contains(NUMBER)
                column = pl.when(risky).then(pl.lit("'") + column).otherwise(column)
            if na or (isinstance(options, CsvOptions) and options.formula_escape):
                expressions.append(column.alias(name))
        elif dtype == pl.Float64 and target_format != "json":
            # polars reads the markers "nan"/"NaN" as NaN; they are NA, as everywhere.
            # (Its JSON writer already writes NaN and infinity as null.)
            expressions.append(pl.when(~column.is_nan()).then(column).alias(name))
    return expressions


def _sink(lazy: pl.LazyFrame, target: Path, options: ExportOptions, warnings: list[str]) -> None:
    if isinstance(options, AvroOptions):
        # polars has no Avro sink: its Avro writer per batch, the blocks joined (AvroSink).
        from waybill_export_worker.conversion.avro import AvroSink

        schema = pl.DataFrame(schema=lazy.collect_schema()).to_arrow().schema
        sink = AvroSink(target, schema, options, warnings)
        try:
            lazy.sink_batches(sink.write_frame, chunk_size=65_536)
        finally:
            sink.close()
        return
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
    elif isinstance(options, ArrowOptions):
        # Arrow's own string type (large_string), not polars' string_view: readable by
        # every Arrow implementation, and the type pyarrow's writer gives the same file.
        lazy.sink_ipc(
            target,
            compression="uncompressed" if options.compression == "none" else options.compression,
            compat_level=pl.CompatLevel.oldest(),
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
