"""A CSV/TSV file as a stream of record batches with one schema for the whole file.

Our own inference on the first MiB (`csv_inference`), then pyarrow's streaming reader
with those types pinned; when a later block does not fit (a float in an int column,
text, an int64 overflow), the column is widened and the file is read again from the
start (`Restart`); from the second widening on, one streaming pass over the whole file
settles every column at once. Nothing is ever silently rounded or dropped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from waybill_export_worker.conversion.errors import (
    ConversionCancelled,
    ConversionError,
    Restart,
)
from waybill_export_worker.conversion.readers.csv_inference import (
    NULLS,
    SIGNED_INTEGER,
    infer_types,
    join_types,
    wider_type,
)
from waybill_export_worker.conversion.readers.paced_file import PacedFile
from waybill_shared import formats

# The general path's read block: pyarrow parses a block's lines in parallel, and 1 MiB
# blocks ran ~25% slower. The sample we infer types from is 1 MiB (~5,000 rows of a
# 20-column table): at 4 MiB it held ~40 MB more for no better types.
DEFAULT_BLOCK = 4 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
READ_AHEAD_BLOCKS = 4
# Widenings the sample may cost before the whole file is scanned for its types: one
# restart is cheaper than a scan (~1.5-4x a conversion), but a sparse matrix whose
# columns are all 0 in the sample and hold decimals later fails one column per restart.
SETTLE_AFTER_WIDENINGS = 2
SETTLE_BLOCK = 1024 * 1024
# How pyarrow's CSV reader names a value its column's pinned type refused, e.g.
# "In CSV column #2: Row #5: CSV conversion error to int64: invalid value '1.5'".
_COLUMN_ERROR = re.compile(r"column #(\d+)")
_INVALID_VALUE = re.compile(r"invalid value '(.*)'")


@dataclass(frozen=True)
class RefusedValue:
    """A value that did not fit its column's type."""

    column: int  # the column's index in the header
    overflow: bool  # an integer that int64 refused: a float would change it


def refused_value(error: str) -> RefusedValue | None:
    """The column (and whether it was an int64 overflow) that pyarrow's CSV reader
    names in the text of an ArrowInvalid; None when it names no column (a row with
    too many fields, say), which no widening can fix. pyarrow says it in text only:
    this is the one place that reads that text."""
    match = _COLUMN_ERROR.search(error)
    if match is None:
        return None
    value = _INVALID_VALUE.search(error)
    overflow = value is not None and SIGNED_INTEGER.match(value.group(1)) is not None
    return RefusedValue(int(match.group(1)), overflow)


def _raw_text(names: list[str], include: list[str] | None = None) -> pacsv.ConvertOptions:
    """Every column as the text in the file, NA markers included: which of them the
    file uses is worth knowing."""
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        null_values=[],
        include_columns=include or [],
    )


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


class CsvSource:
    """A CSV/TSV file: `schema` (may widen) and `batches()` (raises Restart after a
    widening; call again). The polars engine reads `path` with the same `types`."""

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
        wider = wider_type(self.schema.field(column).type, overflow=overflow)
        if wider is None:
            raise ConversionError(f"column {column!r}: {reason}")
        self.types[column] = wider
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
                    self.types[name] = join_types(self.types[name], found)
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
            refused = refused_value(str(exc))
            if refused is None:
                raise ConversionError(f"unreadable table: {exc}") from exc
            column = self.names[refused.column]
            self.widen(column, overflow=refused.overflow, reason=str(exc))
            raise Restart(column) from exc
        finally:
            source.close()
