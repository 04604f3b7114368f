"""Tabular inputs as a stream of record batches with one schema for the whole file.

CSV/TSV: our own inference on the first MiB (ids with leading zeros stay text, NA
markers are null), then polars' streaming reader with those types pinned; when a
later value does not fit (a float in an int column, text, an int64 overflow), the
column is widened (null -> int -> float -> string) and the file is read again from
the start. Nothing is ever silently rounded or dropped.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from waybill_export_worker.conversion.errors import ConversionError

NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A"]
# Patterns for the type inference. Integers without a sign or leading zero only:
# arrow's int parser refuses "+5" (it stays a float), and "007" is an id (text).
_INT = r"^-?(0|[1-9][0-9]*)$"
_LEADING_ZERO_INT = r"^[+-]?0[0-9]+$"
_FLOAT = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|Inf|INF|infinity|Infinity)$"
BOOLS = ["true", "false", "True", "False", "TRUE", "FALSE"]
_WIDER = {
    pa.null(): pa.int64(),
    pa.int64(): pa.float64(),
    pa.float64(): pa.string(),
    pa.bool_(): pa.string(),
}
SIGNED_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_POLARS_TYPES = {pa.int64(): pl.Int64, pa.float64(): pl.Float64, pa.bool_(): pl.Boolean}
_POLARS_PARSE_ERROR = re.compile(
    r"could not parse `(.*)` as dtype `([^`]+)` at column .*\(column number (\d+)\)"
)
# The sample we infer types from: ~5,000 rows of a 20-column table; at 4 MiB it held
# ~40 MB more for no better types.
SAMPLE_BYTES = 1024 * 1024
INFER_CELLS = 500_000
# polars sizes its CSV read chunks by the size of the file, and holds several in
# flight: its memory grew with the input (210 MB at 100 MB, 365 MB at 1 GB). Fixed
# 4 MiB chunks keep it flat (~155 MB at either size) at the same speed. polars reads
# the variable at each scan; an operator's own setting wins.
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(4 * 1024 * 1024))


class CountingFile:
    """A read-only binary file that reports how many bytes were read."""

    def __init__(self, path: Path, on_read: Callable[[int], None] | None) -> None:
        self.raw: IO[bytes] = path.open("rb")
        self.on_read = on_read
        self.position = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.position += len(data)
        if self.on_read is not None:
            self.on_read(self.position)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


def infer_types(sample: pa.RecordBatch) -> tuple[list[pa.DataType], set[str]]:
    """Per column of a raw-text sample: the narrowest type that keeps every value
    (null if it holds only NA markers), and the NA markers the sample uses. One
    polars query over the sample in long form (column, value): per column in Python
    it cost 0.1 s on a 500-column file, as much as converting the rest of it."""
    # At most ~500,000 cells (at least 1,000 rows): wide files cost per cell, and a
    # type the sample got wrong is widened later anyway.
    rows = max(1_000, INFER_CELLS // max(sample.num_columns, 1))
    frame = pl.from_arrow(sample.slice(0, rows))
    assert isinstance(frame, pl.DataFrame)
    if not frame.columns:
        return [], set()
    raw = pl.col("raw")
    value = pl.when(raw.is_in(NULLS)).then(None).otherwise(raw)
    stats = (
        frame.with_columns(pl.all().cast(pl.String))
        .unpivot(variable_name="column", value_name="raw")
        .group_by("column", maintain_order=True)
        .agg(
            raw.filter(raw.is_in(NULLS)).unique().alias("markers"),
            value.is_null().all().alias("empty"),
            # .all() and .any() skip nulls, i.e. the NA markers.
            value.str.contains(_INT).all().alias("int"),
            (value.cast(pl.Int64, strict=False).is_null() & value.is_not_null())
            .any()
            .alias("overflow"),
            value.str.contains(_FLOAT).all().alias("float"),
            value.str.contains(_LEADING_ZERO_INT).any().alias("leading_zero"),
            value.is_in(BOOLS).all().alias("bool"),
        )
    )
    found = {row["column"]: row for row in stats.iter_rows(named=True)}
    types: list[pa.DataType] = []
    markers: set[str] = set()
    for name in frame.columns:
        row = found[name]
        markers.update(row["markers"])
        if row["empty"]:
            types.append(pa.null())
        elif row["int"]:  # past int64 a float would change the value: text
            types.append(pa.string() if row["overflow"] else pa.int64())
        elif row["float"] and not row["leading_zero"]:
            types.append(pa.float64())
        elif row["bool"]:
            types.append(pa.bool_())
        else:
            types.append(pa.string())
    return types, markers


class Restart(Exception):
    """A column was widened after batches were emitted: convert again from the start."""


def _short_rows_only(row: pacsv.InvalidRow) -> str:
    """In the sample, as polars reads the whole file: a row with fewer fields than the
    header has NA for the rest (left out of the inference), one with more fails."""
    return "skip" if row.actual_columns < row.expected_columns else "error"


class CsvSource:
    """A CSV/TSV file: our types (`schema`, which may widen) and the NA markers met so
    far, read by polars with both pinned (`scan`). `batches()` raises Restart when a
    later value does not fit: the column was widened or the marker learned; call
    again."""

    def __init__(
        self, path: Path, *, delimiter: str, on_read: Callable[[int], None] | None
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self.on_read = on_read
        kind = "TSV" if delimiter == "\t" else "CSV"
        try:
            self.names = self._header()
            first = self._sample() if self.names else None
        except (UnicodeDecodeError, csv.Error, pa.ArrowInvalid) as exc:
            raise ConversionError(f"not a readable {kind} file: {exc}") from exc
        if len(set(self.names)) != len(self.names):
            raise ConversionError("the header repeats a column name")
        types, null_markers = (
            infer_types(first) if first is not None else ([pa.string()] * len(self.names), set())
        )
        self.types = dict(zip(self.names, types, strict=True))
        # polars checks every field against every NA marker it is given (all nine cost
        # ~30% of its speed): it gets the ones the sample used, and learns the others
        # as they come (`learn`). Text columns map every marker to null regardless.
        self.markers = null_markers | {""}
        # For progress: polars cannot say how far it has read; rows times this can.
        self.sample_rows = first.num_rows if first is not None else 0
        self.size = path.stat().st_size
        self.bytes_per_row = min(SAMPLE_BYTES, self.size) / max(self.sample_rows, 1)

    def _header(self) -> list[str]:
        """The column names: the first non-empty row (pyarrow and polars skip empty
        lines too), a BOM dropped."""
        with self.path.open(encoding="utf-8-sig", newline="") as f:
            return next((row for row in csv.reader(f, delimiter=self.delimiter) if row), [])

    def _sample(self) -> pa.RecordBatch | None:
        """The first SAMPLE_BYTES, every column as raw text (None if there are no rows),
        cut at the last newline. The last row of a cut block is dropped: the cut may
        fall inside a quoted field, and a reader takes an unterminated quote to the
        end as a (partial) value."""
        # Raw text, NA markers included: which of them the file uses is worth knowing.
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(self.names, pa.string()),
            strings_can_be_null=False,
            null_values=[],
        )
        parse = pacsv.ParseOptions(
            delimiter=self.delimiter, newlines_in_values=True, invalid_row_handler=_short_rows_only
        )
        with self.path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
        cut = len(head) == SAMPLE_BYTES
        if cut:
            head = head[: head.rfind(b"\n") + 1]
        if head:
            try:
                table = pacsv.read_csv(
                    pa.py_buffer(head),
                    read_options=pacsv.ReadOptions(use_threads=False, block_size=len(head) + 1),
                    parse_options=parse,
                    convert_options=convert,
                )
                if cut:
                    table = table.slice(0, max(table.num_rows - 1, 0))
                return table.combine_chunks().to_batches()[0] if table.num_rows else None
            except pa.ArrowInvalid:  # e.g. the cut row lacks columns: read it properly
                pass
        strings = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=max(SAMPLE_BYTES, len(head) * 2)),
            parse_options=parse,
            convert_options=convert,
        )
        try:
            return strings.read_next_batch()
        except StopIteration:
            return None
        finally:
            strings.close()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(n, pa.string() if t == pa.null() else t) for n, t in self.types.items()])

    def scan(self) -> pl.LazyFrame:
        """The file as polars streams it, with our types and NA: text holding any NA
        marker is null, and so is a float read from "nan" (polars reads it as NaN)."""
        schema = {f.name: _POLARS_TYPES.get(f.type, pl.String) for f in self.schema}
        lazy = pl.scan_csv(
            self.path,
            schema=schema,
            separator=self.delimiter,
            has_header=True,
            null_values=sorted(self.markers),
            encoding="utf8",
        )
        na: list[pl.Expr] = []
        for name, dtype in schema.items():
            column = pl.col(name)
            if dtype is pl.String:
                na.append(pl.when(column.is_in(NULLS)).then(None).otherwise(column).alias(name))
            elif dtype is pl.Float64:
                na.append(pl.when(column.is_nan()).then(None).otherwise(column).alias(name))
        return lazy.with_columns(na)

    def learn(self, exc: pl.exceptions.ComputeError) -> None:
        """A value polars could not read as its column's type: an NA marker not met
        before becomes one more, anything else widens the column (callers read the
        file again). Not a value at all (ragged rows, bad UTF-8): ConversionError."""
        message = str(exc)
        match = _POLARS_PARSE_ERROR.search(message)
        if match is None:
            raise ConversionError(f"unreadable table: {message.splitlines()[0]}") from exc
        value, column = match.group(1), self.names[int(match.group(3)) - 1]
        if value in NULLS and value not in self.markers:
            self.markers.add(value)
            return
        self.widen(
            column, overflow=bool(SIGNED_INTEGER.match(value)), reason=message.splitlines()[0]
        )

    def widen(self, column: str, *, overflow: bool, reason: str) -> None:
        """A later value of `column` does not fit its type: widen it (null -> int ->
        float -> string; an int64 overflow goes straight to string, as a float would
        change the value). Callers convert again from the start."""
        current = self.schema.field(column).type
        wider = _WIDER.get(current)
        if wider is None:
            raise ConversionError(f"column {column!r}: {reason}")
        self.types[column] = pa.string() if overflow and current == pa.int64() else wider

    def progress(self, rows: int) -> int:
        return min(int(rows * self.bytes_per_row), self.size)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches in `schema`, streamed by polars (1.3-1.8x pyarrow's CSV
        reader here), which holds a few morsels in flight, not the file."""
        if not self.names:
            return
        schema, rows = self.schema, 0
        try:
            for frame in self.scan().collect_batches():
                rows += frame.height
                if self.on_read is not None:
                    self.on_read(self.progress(rows))
                yield from frame.to_arrow().cast(schema).to_batches()
        except pl.exceptions.ComputeError as exc:
            self.learn(exc)
            raise Restart(str(exc).splitlines()[0]) from exc
        if self.on_read is not None:
            self.on_read(self.size)


def json_lines_batches(
    path: Path, on_read: Callable[[int], None] | None, block_size: int | None = None
) -> Iterator[pa.RecordBatch]:
    try:
        reader = pajson.open_json(
            CountingFile(path, on_read), read_options=pajson.ReadOptions(block_size=block_size)
        )
        yield from reader
    except pa.ArrowInvalid as exc:
        raise ConversionError(f"not readable JSON Lines: {exc}") from exc


def json_array_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """A JSON array: DuckDB streams it, typing every column from the whole file."""
    import duckdb

    try:
        con = duckdb.connect()
        relation = con.sql(
            "SELECT * FROM read_json(?, format = 'array', sample_size = -1)", params=[str(path)]
        )
        reader = relation.to_arrow_reader(64_000)
        for batch in reader:
            if on_read is not None:
                on_read(path.stat().st_size // 2)
            yield batch
    except duckdb.Error as exc:
        raise ConversionError(f"not a readable JSON array: {exc}") from exc


def parquet_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"not a readable Parquet file: {exc}") from exc
    total = max(pf.metadata.num_row_groups, 1)

    def stream() -> Iterator[pa.RecordBatch]:
        size = path.stat().st_size
        for index in range(pf.metadata.num_row_groups):
            yield from pf.iter_batches(row_groups=[index], batch_size=65_536)
            if on_read is not None:
                on_read(size * (index + 1) // total)

    return pf.schema_arrow, stream()


def excel_batches(
    path: Path, on_read: Callable[[int], None] | None, chunk: int = 50_000
) -> Iterator[pa.RecordBatch]:
    """The first sheet, streamed with openpyxl's read-only mode."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ConversionError(f"not a readable Excel file: {exc}") from exc
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        names = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        schema: pa.Schema | None = None
        block: list[tuple[Any, ...]] = []

        def flush() -> pa.RecordBatch:
            nonlocal schema
            columns = list(zip(*block, strict=False)) if block else [() for _ in names]
            arrays = []
            for i, _ in enumerate(names):
                values = list(columns[i]) if i < len(columns) else [None] * len(block)
                target = schema.field(i).type if schema is not None else None
                try:
                    array = pa.array(values, type=target)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    array = pa.array(
                        [None if v is None else str(v) for v in values], type=pa.string()
                    )
                arrays.append(array)
            batch = pa.RecordBatch.from_arrays(arrays, names=names)
            if schema is None:
                schema = pa.schema(
                    [
                        (n, pa.string() if a.type == pa.null() else a.type)
                        for n, a in zip(names, arrays, strict=True)
                    ]
                )
                batch = batch.cast(schema)
            elif batch.schema != schema:
                batch = pa.RecordBatch.from_arrays(
                    [
                        a
                        if a.type == f.type
                        else pa.array(
                            [None if v is None else str(v) for v in a.to_pylist()], pa.string()
                        )
                        for a, f in zip(batch.columns, schema, strict=True)
                    ],
                    names=names,
                )
                batch = batch.cast(schema, safe=False) if batch.schema != schema else batch
            return batch

        for row in rows:
            block.append(tuple(row[: len(names)]) + (None,) * (len(names) - len(row)))
            if len(block) >= chunk:
                yield flush()
                block = []
        if block or schema is None:
            yield flush()
    finally:
        book.close()
    if on_read is not None:
        on_read(path.stat().st_size)


def hdf5_batches(
    path: Path, on_read: Callable[[int], None] | None, rows_per_batch: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """HDF5 in Waybill's layout (see the writer)."""
    from waybill_export_worker.conversion.hdf5 import read_batches

    yield from read_batches(path, rows_per_batch=rows_per_batch, on_read=on_read)


def first_json_char(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    return head[:1].decode("ascii", "replace")
