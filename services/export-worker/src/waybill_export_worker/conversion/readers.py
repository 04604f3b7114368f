"""Tabular inputs as a stream of record batches with one schema for the whole file.

CSV/TSV: our own inference on the first MiB (ids with leading zeros stay text, NA
markers are null), then pyarrow's streaming reader with those types pinned; when a
later block does not fit (a float in an int column, text, an int64 overflow), the
column is widened (null -> int -> float -> string) and the file is read again from
the start; from the second widening on, one streaming pass over the whole file settles
every column at once. Nothing is ever silently rounded or dropped.
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from waybill_export_worker.conversion.errors import ConversionCancelled, ConversionError
from waybill_shared import formats

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
_COLUMN_ERROR = re.compile(r"column #(\d+)")
_INVALID_VALUE = re.compile(r"invalid value '(.*)'")
SIGNED_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# The general path's read block: pyarrow parses a block's lines in parallel, and 1 MiB
# blocks ran ~25% slower. The sample we infer types from is 1 MiB (~5,000 rows of a
# 20-column table): at 4 MiB it held ~40 MB more for no better types.
DEFAULT_BLOCK = 4 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
READ_AHEAD_BLOCKS = 4
INFER_CELLS = 500_000
# Widenings the sample may cost before the whole file is scanned for its types: one
# restart is cheaper than a scan (~1.5-4x a conversion), but a sparse matrix whose
# columns are all 0 in the sample and hold decimals later fails one column per restart.
SETTLE_AFTER_WIDENINGS = 2
SETTLE_BLOCK = 1024 * 1024
EXCEL_CHUNK_ROWS = 50_000


class PacedFile:
    """The file under pyarrow's streaming CSV reader, which reads up to 32 blocks ahead
    on its own I/O thread: when the writer is the slower side (HDF5, Excel) that was
    128 MB of 4 MiB blocks, filled over the first seconds of every large file. A read
    here waits while `ahead` blocks are unconsumed (the consumer calls `consumed_one`
    per batch, one per block); the wait is short-lived, so a block that yields no batch
    only slows the reader, it cannot stall it."""

    def __init__(self, path: Path, *, ahead: int) -> None:
        self.raw: IO[bytes] = path.open("rb")
        self.ahead = ahead
        self.offsets: list[int] = []  # end offset of each block read
        self.consumed = 0
        self.changed = threading.Condition()

    def read(self, n: int = -1) -> bytes:
        with self.changed:
            self.changed.wait_for(
                lambda: len(self.offsets) - self.consumed < self.ahead or self.raw.closed,
                timeout=0.5,
            )
        data = self.raw.read(n)
        with self.changed:
            self.offsets.append(self.raw.tell())
        return data

    def consumed_one(self) -> None:
        with self.changed:
            self.consumed += 1
            self.changed.notify_all()

    @property
    def consumed_bytes(self) -> int:
        """How far the consumer has got: the end of the last block it took."""
        with self.changed:
            index = min(self.consumed, len(self.offsets)) - 1
            return self.offsets[index] if index >= 0 else 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        with self.changed:
            self.raw.close()
            self.changed.notify_all()

    @property
    def closed(self) -> bool:
        return self.raw.closed


def _decide(stats: dict[str, Any]) -> pa.DataType:
    """The narrowest type that keeps every value (null if there are only NA markers);
    "float", "leading_zero" and "bool" are only asked of columns neither empty nor
    all integers."""
    if stats["empty"]:
        return pa.null()
    if stats["int"]:  # past int64 a float would change the value: text
        return pa.string() if stats["overflow"] else pa.int64()
    if stats["float"] and not stats["leading_zero"]:
        return pa.float64()
    if stats["bool"]:
        return pa.bool_()
    return pa.string()


def _join(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding the values of both (null < int < float < string,
    null < bool < string)."""
    if a == b or b == pa.null():
        return a
    if a == pa.null():
        return b
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def _raw_text(names: list[str], include: list[str] | None = None) -> pacsv.ConvertOptions:
    """Every column as the text in the file, NA markers included: which of them the
    file uses is worth knowing."""
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        null_values=[],
        include_columns=include or [],
    )


def infer_types(
    sample: pa.RecordBatch, max_cells: int | None = INFER_CELLS
) -> tuple[list[pa.DataType], set[str]]:
    """Per column of a raw-text sample: its type (`_decide`), and the NA markers the
    sample uses. One polars query over the sample in long form (column, value): per
    column in Python it cost 0.1 s on a 500-column file, as much as converting the
    rest of it, and one expression per column was 2-3x slower than the long form."""
    # At most ~500,000 cells (at least 1,000 rows): wide files cost per cell, and a
    # type the sample got wrong is widened later anyway.
    if max_cells is not None:
        sample = sample.slice(0, max(1_000, max_cells // max(sample.num_columns, 1)))
    frame = pl.from_arrow(sample)
    assert isinstance(frame, pl.DataFrame)
    if not frame.columns:
        return [], set()
    raw, value = pl.col("raw"), pl.col("value")
    cells = (
        frame.with_columns(pl.all().cast(pl.String))
        .unpivot(variable_name="column", value_name="raw")
        .with_columns(pl.when(raw.is_in(NULLS)).then(None).otherwise(raw).alias("value"))
    )
    # Two passes: what every column needs, then the rest only for columns that are
    # not all integers (a count matrix has none left; 27% less time on 500 columns).
    found = {
        row["column"]: row
        for row in cells.group_by("column", maintain_order=True)
        .agg(
            raw.filter(value.is_null()).unique().alias("markers"),
            value.is_null().all().alias("empty"),
            # .all() and .any() skip nulls, i.e. the NA markers.
            value.str.contains(_INT).all().alias("int"),
            (value.cast(pl.Int64, strict=False).is_null() & value.is_not_null())
            .any()
            .alias("overflow"),
        )
        .iter_rows(named=True)
    }
    rest = [name for name, row in found.items() if not (row["int"] or row["empty"])]
    for row in (
        cells.filter(pl.col("column").is_in(rest))
        .group_by("column")
        .agg(
            value.str.contains(_FLOAT).all().alias("float"),
            value.str.contains(_LEADING_ZERO_INT).any().alias("leading_zero"),
            value.is_in(BOOLS).all().alias("bool"),
        )
        .iter_rows(named=True)
    ):
        found[row["column"]].update(row)
    markers: set[str] = set()
    for name in frame.columns:
        markers.update(found[name]["markers"])
    return [_decide(found[name]) for name in frame.columns], markers


def text_encoding(path: Path) -> str:
    """How the file's text is encoded, judged from its first MiB (`formats.text_encoding`:
    UTF-8, else Windows-1252, else Latin-1); UTF-16 and bytes that are not text are
    refused with the reason."""
    with path.open("rb") as f:
        encoding = formats.text_encoding(f.read(SAMPLE_BYTES))
    if encoding is None:
        raise ConversionError("not a text file: neither UTF-8 nor free of NUL bytes")
    if encoding == "utf-16":
        raise ConversionError("UTF-16 text: save the file as UTF-8 to convert it")
    return encoding


class Restart(Exception):
    """A column was widened after batches were emitted: convert again from the start."""


class CsvSource:
    """A CSV/TSV file: `schema` (may widen) and `batches()` (raises Restart after a
    widening; call again)."""

    def __init__(
        self,
        path: Path,
        *,
        delimiter: str,
        on_read: Callable[[int], None] | None,
        should_stop: Callable[[], bool] | None = None,
        block_size: int | None = None,
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self.on_read = on_read
        self.should_stop = should_stop
        self.parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
        self.encoding = text_encoding(path)
        self.read = pacsv.ReadOptions(
            block_size=block_size or DEFAULT_BLOCK, encoding=self.encoding
        )
        self.sample_bytes = min(SAMPLE_BYTES, self.read.block_size)
        kind = "TSV" if delimiter == "\t" else "CSV"
        try:
            self.names = self._header()
            first = self._sample()
        except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error) as exc:
            if "Empty CSV file" in str(exc):
                self.names, first = [], None
            else:
                raise ConversionError(f"not a readable {kind} file: {exc}") from exc
        if len(set(self.names)) != len(self.names):
            raise ConversionError("the header repeats a column name")
        # The NA markers the sample uses: engines that pay per marker checked (polars
        # reads 30% slower with all nine) start with these and learn the others.
        types, self.null_markers = (
            infer_types(first) if first is not None else ([pa.string()] * len(self.names), set())
        )
        self.types = dict(zip(self.names, types, strict=True))
        self.widenings = 0
        # For engines that cannot say how far they have read: bytes per row, estimated.
        self.sample_rows = first.num_rows if first is not None else 0
        self.size = path.stat().st_size
        self.bytes_per_row = min(self.sample_bytes, self.size) / max(self.sample_rows, 1)

    def _sample(self) -> pa.RecordBatch | None:
        """The first SAMPLE_BYTES, every column as raw text (None if there are no rows).
        Parsed from the bytes themselves, cut at the last newline: 15 ms where the streaming
        reader, with its read-ahead, takes 60-250 ms and ~100 MB. The last row of a
        cut block is dropped: the cut may fall inside a quoted field, and pyarrow
        reads an unterminated quote to the end as a (partial) value."""
        convert = _raw_text(self.names)
        with self.path.open("rb") as f:
            head = f.read(self.sample_bytes)
        cut = len(head) == self.sample_bytes
        if cut:
            head = head[: head.rfind(b"\n") + 1]
        if head:
            try:
                table = pacsv.read_csv(
                    pa.py_buffer(head),
                    read_options=pacsv.ReadOptions(
                        use_threads=False, block_size=len(head) + 1, encoding=self.encoding
                    ),
                    parse_options=self.parse,
                    convert_options=convert,
                )
                if cut:
                    table = table.slice(0, max(table.num_rows - 1, 0))
                return table.combine_chunks().to_batches()[0] if table.num_rows else None
            except pa.ArrowInvalid:  # e.g. the cut row lacks columns: read it properly
                pass
        strings = pacsv.open_csv(
            self.path, read_options=self.read, parse_options=self.parse, convert_options=convert
        )
        try:
            return strings.read_next_batch()
        except StopIteration:
            return None
        finally:
            strings.close()
            del strings
            # The streaming reader's read-ahead (~100 MB) is freed but kept by pyarrow's
            # pool: give it back before the conversion proper.
            pa.default_memory_pool().release_unused()

    def _header(self) -> list[str]:
        """The column names: the first non-empty row (as pyarrow and polars skip empty
        lines), a BOM dropped. By the csv module: pyarrow's first `open_csv` in a
        process cost ~40 ms (its thread pools), a tenth of converting a 36 MB file."""
        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        with self.path.open(encoding=encoding, newline="") as f:
            return next((row for row in csv.reader(f, delimiter=self.delimiter) if row), [])

    def widen(self, column: str, *, overflow: bool, reason: str) -> None:
        """A later value of `column` does not fit its type: widen it (null -> int ->
        float -> string; an int64 overflow goes straight to string, as a float would
        change the value). Callers convert again from the start. From the
        SETTLE_AFTER_WIDENINGS-th widening on, the sample has proved a poor guide:
        the whole file is scanned once and every column settled (`settle_types`)."""
        current = self.schema.field(column).type
        wider = _WIDER.get(current)
        if wider is None:
            raise ConversionError(f"column {column!r}: {reason}")
        self.types[column] = pa.string() if overflow and current == pa.int64() else wider
        self.widenings += 1
        if self.widenings == SETTLE_AFTER_WIDENINGS:
            self.settle_types()

    def settle_types(self) -> None:
        """Every column's type, and the NA markers used, from the whole file rather
        than the sample: the sample's inference (`infer_types`) folded over every
        block of the raw text. Text columns cannot widen further and are not read;
        types only ever widen here. 1 MiB blocks hold memory flat (~240 MB at 500
        columns; a polars scan with the same statistics held 410-440 MB and ran
        only 0-40% faster)."""
        narrow = [n for n in self.names if self.types[n] != pa.string()]
        if not narrow:
            return
        source = PacedFile(self.path, ahead=2)
        try:
            reader = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(block_size=SETTLE_BLOCK, encoding=self.encoding),
                parse_options=self.parse,
                convert_options=_raw_text(self.names, include=narrow),
            )
            for block in reader:
                source.consumed_one()
                if self.should_stop is not None and self.should_stop():
                    raise ConversionCancelled
                types, markers = infer_types(block, max_cells=None)
                self.null_markers |= markers
                for name, found in zip(narrow, types, strict=True):
                    self.types[name] = _join(self.types[name], found)
        except pa.ArrowInvalid as exc:
            raise ConversionError(f"unreadable table: {exc}") from exc
        finally:
            source.close()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(n, pa.string() if t == pa.null() else t) for n, t in self.types.items()])

    def batches(self) -> Iterator[pa.RecordBatch]:
        if not self.names:
            return
        schema = self.schema
        source = PacedFile(self.path, ahead=READ_AHEAD_BLOCKS)
        try:
            reader = pacsv.open_csv(
                source,
                read_options=self.read,
                parse_options=self.parse,
                convert_options=pacsv.ConvertOptions(
                    column_types={f.name: f.type for f in schema},
                    strings_can_be_null=True,
                    null_values=NULLS,
                    quoted_strings_can_be_null=True,
                ),
            )
            for batch in reader:
                source.consumed_one()
                if self.on_read is not None:
                    self.on_read(source.consumed_bytes)
                yield batch
        except pa.ArrowInvalid as exc:
            match = _COLUMN_ERROR.search(str(exc))
            if match is None:
                raise ConversionError(f"unreadable table: {exc}") from exc
            column = self.names[int(match.group(1))]
            value = _INVALID_VALUE.search(str(exc))
            # An integer that int64 refused is an overflow: a float would change it.
            overflow = value is not None and SIGNED_INTEGER.match(value.group(1)) is not None
            self.widen(column, overflow=overflow, reason=str(exc))
            raise Restart(column) from exc
        finally:
            source.close()


def json_lines_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """JSON Lines, typed from the whole file by polars before it streams (one extra
    pass, ~1 s per 200 MB here): ints and floats meet as floats, anything and text as
    text, a field first seen late is a column, integers past int64 keep their exact
    text. pyarrow's streaming reader, 20-30% faster, types from its first block: it
    failed on a later record that did not fit and read 2**70 as a float."""
    return _typed_json_lines(path, on_read, "JSON Lines")


def _typed_json_lines(
    path: Path, on_read: Callable[[int], None] | None, kind: str
) -> Iterator[pa.RecordBatch]:
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
    bytes_per_row = len(head) / max(head.count(b"\n"), 1)  # for progress
    size = path.stat().st_size
    try:
        lazy = pl.scan_ndjson(path, infer_schema_length=None)
        past_int64 = [
            pl.col(n).cast(pl.String)
            for n, t in lazy.collect_schema().items()
            if t.is_integer() and t != pl.Int64
        ]
        rows = 0
        for frame in lazy.with_columns(past_int64).collect_batches():
            rows += frame.height
            if on_read is not None:
                on_read(min(int(rows * bytes_per_row), size))
            yield from frame.to_arrow().to_batches()
    except pl.exceptions.PolarsError as exc:
        raise ConversionError(f"not readable as {kind}: {str(exc).splitlines()[0]}") from exc
    if on_read is not None:
        on_read(size)


def json_array_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """A JSON array: DuckDB splits it into its records (their text as written) into
    JSON Lines beside it, which `json_lines_batches` types from the whole file and
    streams, so both JSON forms read alike. DuckDB's own typing made a column with an
    integer past int64 a double, rounding its integers past 2**53; and it was slower
    (122 MB array: 1.3 s this way, 2.1 s by DuckDB's `read_json`). Progress: the
    split is the first half (DuckDB's own progress for the query, which moves per
    ~32 MB buffer), the read the second."""
    import duckdb

    size = path.stat().st_size

    def report(fraction: float) -> None:
        if on_read is not None:
            on_read(int(size * min(max(fraction, 0.0), 1.0)))

    lines = path.with_name(path.name + ".lines")
    try:
        con = duckdb.connect()
        # Tracked only when asked for (its default follows whether a terminal is attached).
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
        with lines.open("wb") as out:
            try:
                records = con.sql(
                    "SELECT json FROM read_json_objects(?, format = 'array')", params=[str(path)]
                ).to_arrow_reader(64_000)
                for batch in records:
                    # JSON text holds no raw line break inside a string: outside one it
                    # is white space, and a record must fit on its line.
                    record = pl.Series(batch.column(0)).str.replace_all("[\r\n]", " ")
                    pl.DataFrame({"record": record}).write_csv(
                        out, include_header=False, quote_style="never"
                    )
                    report(con.query_progress() / 200)
            except (duckdb.Error, OSError) as exc:  # its reader's errors arrive as OSError
                raise ConversionError(f"not a readable JSON array: {exc}") from exc
        written = lines.stat().st_size
        if written:
            yield from _typed_json_lines(
                lines, lambda n: report(0.5 + n / written / 2), "a JSON array of records"
            )
        report(1.0)
    finally:
        lines.unlink(missing_ok=True)


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


class ExcelSource:
    """The first sheet, streamed with openpyxl's read-only mode in chunks of rows.
    Types come from the first chunk; a later chunk that needs a wider type for a
    column (int -> float, null -> anything, a mix -> text) widens it, and the file
    is converted again from the start (Restart). Values are never cast unsafely:
    before, a late 1.5 in an int column was written as 1. `read()` is one pass; the
    types learnt carry over to the next."""

    def __init__(self, path: Path, on_read: Callable[[int], None] | None) -> None:
        self.path = path
        self.on_read = on_read
        self.types: list[pa.DataType] | None = None  # null until a value says more

    def read(self) -> Iterator[pa.RecordBatch]:
        import openpyxl

        try:
            book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:
            raise ConversionError(f"not a readable Excel file: {exc}") from exc
        try:
            sheet = book.worksheets[0]
            # Progress: rows read of the rows the sheet declares (its dimension).
            declared, size, done = sheet.max_row or 0, self.path.stat().st_size, 0
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                return
            names = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
            block: list[tuple[Any, ...]] = []
            emitted = False
            for row in rows:
                block.append(tuple(row[: len(names)]) + (None,) * (len(names) - len(row)))
                if len(block) >= EXCEL_CHUNK_ROWS:
                    done += len(block)
                    if self.on_read is not None and declared:
                        self.on_read(min(size * done // declared, size))
                    yield self._batch(names, block, emitted)
                    emitted, block = True, []
            if block or not emitted:
                yield self._batch(names, block, emitted)
        finally:
            book.close()
        if self.on_read is not None:
            self.on_read(self.path.stat().st_size)

    def _batch(
        self, names: list[str], block: list[tuple[Any, ...]], emitted: bool
    ) -> pa.RecordBatch:
        columns = list(zip(*block, strict=True)) if block else [()] * len(names)
        arrays = [_python_values(list(values)) for values in columns]
        found = [a.type for a in arrays]
        types = (
            found
            if self.types is None
            else [_join(t, f) for t, f in zip(self.types, found, strict=True)]
        )
        if emitted and types != self.types:
            self.types = types
            raise Restart("a later chunk needs wider column types")
        self.types = types
        # A column with no value yet is written as text, as CSV's are.
        schema = pa.schema(
            [(n, pa.string() if t == pa.null() else t) for n, t in zip(names, types, strict=True)]
        )
        return pa.RecordBatch.from_arrays(
            [
                a if a.type == f.type else a.cast(f.type)
                for a, f in zip(arrays, schema, strict=True)
            ],
            schema=schema,
        )


def _python_values(values: list[Any]) -> pa.Array:
    """One column of a chunk, typed as pyarrow infers it (ints and floats together are
    floats); a mix it refuses, or an integer past int64, as text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


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


def arrow_or_orc_batches(
    path: Path, source_format: str, on_read: Callable[[int], None] | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """An Arrow IPC file (Feather v2; the IPC stream format too) batch by batch, its
    pages mapped rather than read; an ORC file stripe by stripe."""
    size = path.stat().st_size
    try:
        if source_format == "orc":
            import pyarrow.orc as orc

            orc_file = orc.ORCFile(str(path))
            count = orc_file.nstripes
            schema, read = orc_file.schema, orc_file.read_stripe
        else:
            source = pa.memory_map(str(path))
            try:
                ipc = pa.ipc.open_file(source)
                count, schema, read = ipc.num_record_batches, ipc.schema, ipc.get_batch
            except pa.ArrowInvalid:  # the IPC stream format: batches in order
                source.seek(0)
                stream_reader = pa.ipc.open_stream(source)
                count, schema = -1, stream_reader.schema
    except (pa.ArrowInvalid, OSError) as exc:
        kind = "ORC" if source_format == "orc" else "Arrow IPC"
        raise ConversionError(f"not a readable {kind} file: {exc}") from exc

    def stream() -> Iterator[pa.RecordBatch]:
        if count < 0:
            yield from stream_reader
        for index in range(count):
            yield read(index)
            if on_read is not None:
                on_read(size * (index + 1) // count)
        if on_read is not None:
            on_read(size)

    return schema, stream()
