"""Sinks: write record batches to one output format, streaming."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from waybill_export_worker.conversion.archive import FastDeflateZipFile
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.hdf5 import Hdf5Sink
from waybill_shared.export_options import (
    ArrowOptions,
    AvroOptions,
    CsvOptions,
    ExcelOptions,
    ExportOptions,
    Hdf5Options,
    JsonOptions,
    NetcdfOptions,
    OrcOptions,
    ParquetOptions,
)

EXCEL_MAX_ROWS = 1_048_575  # data rows per sheet, the header takes the first row
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL = 32_767
EXCEL_EXACT_INTEGER = 2**53
# A cancel is checked between writes. Excel costs ~10 us a cell (xlsxwriter; the other
# writers are 10-100x faster per value), so its writes are sized in cells: 32,768 rows
# took a second on a slow machine, whatever the width.
EXCEL_CELLS_PER_WRITE = 32_768
# Text a spreadsheet would run as a formula (OWASP CSV injection): = + - @ tab CR.
# Both engines use these (RE2 for pyarrow, Rust regex for polars: the same syntax).
FORMULA = r"^[=+\-@\t\r]"
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class Sink(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> None: ...


def escape_formulas(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Prefix a quote to text cells that look like formulas and are not numbers.
    No Python scalars (CONVERSION.md: pyarrow would import pandas). NA stays NA: its
    `risky` is null, and so is if_else's result."""
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.and_(
                pc.match_substring_regex(column, FORMULA),
                pc.invert(pc.match_substring_regex(column, NUMBER)),
            )
            quoted = pc.utf8_replace_slice(column, start=0, stop=0, replacement="'")
            column = pc.if_else(risky, quoted, column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


class CsvSink:
    """pyarrow's CSV writer (fast) for UTF-8 with '"' quotes; the csv module otherwise."""

    def __init__(self, path: Path, schema: pa.Schema, options: CsvOptions) -> None:
        self.options = options
        self.schema = schema
        self.fast = options.quote_char == '"' and options.encoding.lower().replace("_", "-") in (
            "utf-8",
            "utf8",
        )
        if self.fast:
            self.writer: Any = pacsv.CSVWriter(
                str(path),
                schema,
                write_options=pacsv.WriteOptions(
                    include_header=options.include_header,
                    delimiter=options.delimiter,
                    quoting_style="needed",
                ),
            )
        else:
            self.file: IO[str] = path.open(
                "w", encoding=options.encoding, errors="strict", newline=""
            )
            self.writer = csv.writer(
                self.file,
                delimiter=options.delimiter,
                quotechar=options.quote_char,
                lineterminator="\n",
            )
            if options.include_header:
                self.writer.writerow(schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        if self.options.formula_escape:
            batch = escape_formulas(batch)
        if self.fast:
            self.writer.write_batch(batch)
            return
        try:
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                self.writer.writerow(["" if v is None else v for v in row])
        except UnicodeEncodeError as exc:
            raise ConversionError(
                f"a value cannot be written in {self.options.encoding}: {exc.object[exc.start : exc.end]!r}"
            ) from exc

    def close(self) -> None:
        if self.fast:
            self.writer.close()
        else:
            self.file.close()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _polars_writes(batch: pa.RecordBatch) -> bool:
    """Only numbers, text and booleans: polars' JSON writer takes the batch (dates,
    decimals and other types go through `_json_value`)."""
    return all(
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
        for t in batch.schema.types
    )


class JsonSink:
    """JSON Lines, or one array with orient=records. Floats are written with Python's
    shortest round-trip repr: every value reads back exactly."""

    def __init__(self, path: Path, options: JsonOptions) -> None:
        self.file = io.BufferedWriter(path.open("wb"), buffer_size=1 << 20)
        self.array = options.orient == "records"
        self.first = True
        if self.array:
            self.file.write(b"[")

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if _polars_writes(batch):
            # polars writes floats with the shortest round-trip representation, fast.
            # It writes NaN and infinity, which JSON lacks, as null.
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            if not self.array:
                frame.write_ndjson(self.file)  # straight into the file, no copies
                return
            lines = frame.write_ndjson()
            assert isinstance(lines, str)
        else:
            names = batch.schema.names
            columns = [c.to_pylist() for c in batch.columns]
            lines = "".join(
                json.dumps(
                    {n: _json_value(v) for n, v in zip(names, row, strict=True)}, ensure_ascii=False
                )
                + "\n"
                for row in zip(*columns, strict=True)
            )
        if self.array:
            body = lines.rstrip("\n").replace("\n", ",\n")
            lines = ("\n" if self.first else ",\n") + body
            self.first = False
        self.file.write(lines.encode())

    def close(self) -> None:
        if self.array:
            self.file.write(b"\n]\n" if not self.first else b"]\n")
        self.file.close()


class ParquetSink:
    def __init__(self, path: Path, schema: pa.Schema, options: ParquetOptions) -> None:
        self.options = options
        self.writer = pq.ParquetWriter(
            str(path),
            schema,
            compression=None if options.compression == "none" else options.compression,
            use_dictionary=options.use_dictionary,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch, row_group_size=self.options.row_group_size)

    def close(self) -> None:
        self.writer.close()


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class ExcelSink:
    """xlsxwriter in constant-memory mode. Text is always written as text (never as a
    formula); past 1,048,575 data rows the table continues on `<sheet>_2`, header
    repeated; cells over 32,767 characters are truncated and reported."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: ExcelOptions, warnings: list[str]
    ) -> None:
        import xlsxwriter
        import xlsxwriter.workbook

        # xlsxwriter deflates the sheet's XML with zlib on one core, ~15% of an Excel
        # conversion: it packs with our ZipFile instead (xlsxwriter.workbook's own
        # name for the class; idempotent, so each sink may set it).
        xlsxwriter.workbook.ZipFile = FastDeflateZipFile
        width = len(schema) + (1 if options.include_index else 0)
        if width > EXCEL_MAX_COLUMNS:
            raise ConversionError(f"{width} columns: Excel sheets hold at most {EXCEL_MAX_COLUMNS}")
        self.rows_per_write = max(1, EXCEL_CELLS_PER_WRITE // max(width, 1))
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "nan_inf_to_errors": True,
            },
        )
        self.text_format = self.book.add_format({"quote_prefix": True})
        self.options = options
        self.header = (["index"] if options.include_index else []) + schema.names
        self.warnings = warnings
        self.truncated = 0
        self.sheet_number = 0
        self.row = 0
        self.index = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheet_number += 1
        base = self.options.sheet_name
        name = base if self.sheet_number == 1 else f"{base[:28]}_{self.sheet_number}"
        self.sheet = self.book.add_worksheet(name)
        self.sheet.write_row(0, 0, self.header)
        if self.options.freeze_panes:
            self.sheet.freeze_panes(*self.options.freeze_panes)
        self.row = 1

    def write(self, batch: pa.RecordBatch) -> None:
        # Per column, once per batch: Python values xlsxwriter's write_row types by
        # itself (bool, number, str; None is no cell), one call per row. Text that
        # needs its own call is written after its row, in the same row: risky text
        # with the quote-prefix format, and "" (write_row would leave no cell).
        columns, special = self._plan(batch)
        first = 1 if self.options.include_index else 0
        sheet = self.sheet
        for i, cells in enumerate(zip(*columns, strict=True)):
            if self.row > EXCEL_MAX_ROWS:
                self._new_sheet()
                sheet = self.sheet
            row = self.row
            if first:
                sheet.write_number(row, 0, self.index)
            sheet.write_row(row, first, cells)
            for col, text_format in special.get(i, ()):
                sheet.write_string(row, first + col, cells[col], text_format)
            self.row += 1
            self.index += 1

    def _plan(self, batch: pa.RecordBatch) -> tuple[list[list[Any]], dict[int, list[Any]]]:
        """Each column's cell values, and per row the (column, format) of the text
        cells write_row would get wrong."""
        columns: list[list[Any]] = []
        special: dict[int, list[Any]] = {}
        for col, column in enumerate(batch.columns):
            values, text_formats = self._cells(column)
            columns.append(values)
            for i in text_formats:
                special.setdefault(i, []).append((col, text_formats[i]))
        return columns, special

    def _cells(self, column: pa.Array) -> tuple[list[Any], dict[int, Any]]:
        t = column.type
        if pa.types.is_boolean(t):
            return column.to_pylist(), {}
        if pa.types.is_integer(t):
            values = column.to_pylist()
            largest = pl.Series(column).abs().max()
            if largest is not None and largest > EXCEL_EXACT_INTEGER:  # type: ignore[operator]
                # Excel holds numbers as doubles: past 2**53 it would round; text keeps it.
                values = [
                    str(v) if v is not None and abs(v) > EXCEL_EXACT_INTEGER else v for v in values
                ]
            return values, {}
        # No Python value goes into pyarrow here (CONVERSION.md: it imports pandas);
        # text is checked by polars.
        if pa.types.is_floating(t):
            if pc.all(pc.or_kleene(pc.is_finite(column), pc.is_null(column))).as_py():
                return column.to_pylist(), {}
            # NaN and infinity are not numbers to Excel: written as text.
            return [v if v is None or math.isfinite(v) else str(v) for v in column.to_pylist()], {}
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            text = pl.Series(column)
        else:
            text = pl.Series([_cell_text(v) for v in column.to_pylist()], dtype=pl.String)
        too_long = int((text.str.len_chars() > EXCEL_MAX_CELL).sum())
        if too_long:
            self.truncated += too_long
            text = text.str.slice(0, EXCEL_MAX_CELL)
        special = text == ""
        if self.options.formula_escape:
            special = special | text.str.contains(FORMULA)
        values = text.to_list()
        rows = special.fill_null(False).arg_true().to_list()
        return values, {i: self.text_format if values[i] else None for i in rows}

    def close(self) -> None:
        if self.truncated:
            self.warnings.append(
                f"{self.truncated} cells longer than {EXCEL_MAX_CELL} characters were truncated"
            )
        if self.sheet_number > 1:
            self.warnings.append(f"{self.index} rows continue over {self.sheet_number} sheets")
        self.book.close()


def valid_names(names: list[str], fix: Callable[[str], str]) -> list[str]:
    """Each column name as a format allows it: `fix` makes a name valid; names it
    leaves as they are are kept, the others take a suffix where that name is taken."""
    taken = {name for name in names if fix(name) == name}
    result = []
    for name in names:
        candidate = fix(name)
        if candidate != name:
            base, n = candidate, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            taken.add(candidate)
        result.append(candidate)
    return result


# A batch's column (and its name, for errors) in the form a format can hold.
ColumnConversion = Callable[[pa.Array, str], pa.Array]


class Portable:
    """Values a format has no type for, in the form its readers take back: nested
    values (struct, list, map) as their JSON text in CSV, TSV, Excel, HDF5, Avro and
    netCDF (JSON and ORC keep them nested); binary as base64 text (ORC and Avro keep
    bytes); durations as seconds (a float); unsigned 64-bit integers as int64 in
    Excel, HDF5, netCDF, ORC and Avro, refused past int64 rather than rounded; in ORC
    and Avro, which have no unsigned or (Avro) 8/16-bit integers, smaller integers
    widened, dictionaries decoded, all-NA columns as text, times of day as ISO text.
    Parquet and Arrow keep every type as it is."""

    def __init__(
        self, sink: Sink, conversions: dict[int, tuple[pa.DataType, ColumnConversion]]
    ) -> None:
        self.sink = sink
        self.conversions = conversions

    def __getattr__(self, name: str) -> Any:  # the sink's own settings (rows_per_write)
        return getattr(self.sink, name)

    @staticmethod
    def plan(
        schema: pa.Schema, target_format: str
    ) -> tuple[pa.Schema, dict[int, tuple[pa.DataType, ColumnConversion]]]:
        """The schema the sink is opened with, and per column changed: (its type
        there, how to convert a batch's column)."""
        conversions: dict[int, tuple[pa.DataType, ColumnConversion]] = {}
        for i, field in enumerate(schema):
            change = _portable(field.type, target_format)
            if change is not None:
                conversions[i] = change
        for i, (portable, _) in conversions.items():
            schema = schema.set(i, pa.field(schema.field(i).name, portable))
        return schema, conversions

    def write(self, batch: pa.RecordBatch) -> None:
        columns = list(batch.columns)
        for i, (_, convert) in self.conversions.items():
            columns[i] = convert(columns[i], batch.schema.field(i).name)
        self.sink.write(pa.RecordBatch.from_arrays(columns, names=batch.schema.names))

    def close(self) -> None:
        self.sink.close()


_TYPED_SCHEMA = ("orc", "avro")  # formats with a strict type system of their own
# Avro's integers are int (32-bit) and long; ORC's are signed.
_WIDER_INT = {
    "orc": {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64()},
    "avro": {
        pa.int8(): pa.int32(),
        pa.int16(): pa.int32(),
        pa.uint8(): pa.int32(),
        pa.uint16(): pa.int32(),
        pa.uint32(): pa.int64(),
    },
}


def _portable(t: pa.DataType, fmt: str) -> tuple[pa.DataType, ColumnConversion] | None:
    """How a column of type `t` reaches format `fmt` (None: as it is)."""
    if pa.types.is_nested(t):
        return None if fmt in ("json", "orc") else (pa.string(), _json_text)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return None if fmt in _TYPED_SCHEMA else (pa.string(), _base64)
    if pa.types.is_duration(t):
        return (pa.float64(), _seconds)
    if pa.types.is_uint64(t) and fmt in ("excel", "hdf5", "netcdf", *_TYPED_SCHEMA):
        return (pa.int64(), _int64_or_refuse)
    if fmt not in _TYPED_SCHEMA:
        return None
    if t in _WIDER_INT[fmt]:
        return _cast(_WIDER_INT[fmt][t])
    if pa.types.is_dictionary(t):
        return _portable(t.value_type, fmt) or _cast(t.value_type)
    if pa.types.is_null(t) or pa.types.is_time(t):
        return _cast(pa.string())
    if pa.types.is_string_view(t):
        return _cast(pa.large_string())
    return None


def _cast(to: pa.DataType) -> tuple[pa.DataType, ColumnConversion]:
    return to, lambda column, _: column.cast(to)


def _json_text(column: pa.Array, _: str) -> pa.Array:
    # Rare and small next to a table's flat columns: Python's json is enough.
    values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
    return pa.array(values, pa.string())


def _base64(column: pa.Array, _: str) -> pa.Array:
    return pl.Series(column.cast(pa.large_binary())).bin.encode("base64").to_arrow()


def _seconds(column: pa.Array, _: str) -> pa.Array:
    return (pl.Series(column).dt.total_nanoseconds() / 1e9).to_arrow()


def _int64_or_refuse(column: pa.Array, name: str) -> pa.Array:
    series = pl.Series(column)
    largest = series.max()
    if largest is not None and largest > 2**63 - 1:  # type: ignore[operator]
        raise ConversionError(
            f"column {name!r} holds integers past int64, which this format cannot"
        )
    return series.cast(pl.Int64).to_arrow()


class ArrowSink:
    """The Arrow IPC file format (Feather v2), every type kept."""

    def __init__(self, path: Path, schema: pa.Schema, options: ArrowOptions) -> None:
        compression = None if options.compression == "none" else options.compression
        self.writer = pa.ipc.new_file(
            str(path), schema, options=pa.ipc.IpcWriteOptions(compression=compression)
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


class OrcSink:
    """pyarrow's ORC writer: one stripe per `stripe_size` bytes."""

    def __init__(self, path: Path, schema: pa.Schema, options: OrcOptions) -> None:
        import pyarrow.orc as orc

        self.schema = schema
        self.written = False
        self.writer = orc.ORCWriter(
            str(path),
            compression="uncompressed" if options.compression == "none" else options.compression,
            stripe_size=options.stripe_size,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write(pa.Table.from_batches([batch]))
        self.written = True

    def close(self) -> None:
        if not self.written:  # else the file is left empty, which no reader opens
            self.writer.write(pa.Table.from_batches([], schema=self.schema))
        self.writer.close()


def open_sink(
    target: Path, target_format: str, schema: pa.Schema, options: ExportOptions, warnings: list[str]
) -> Sink:
    if target_format not in ("parquet", "arrow"):
        portable, conversions = Portable.plan(schema, target_format)
        if conversions:
            sink = _open_sink(target, target_format, portable, options, warnings)
            return Portable(sink, conversions)
    return _open_sink(target, target_format, schema, options, warnings)


def _open_sink(
    target: Path, target_format: str, schema: pa.Schema, options: ExportOptions, warnings: list[str]
) -> Sink:
    if target_format in ("csv", "tsv"):
        assert isinstance(options, CsvOptions)
        return CsvSink(target, schema, options)
    if target_format == "json":
        assert isinstance(options, JsonOptions)
        return JsonSink(target, options)
    if target_format == "parquet":
        assert isinstance(options, ParquetOptions)
        return ParquetSink(target, schema, options)
    if target_format == "excel":
        assert isinstance(options, ExcelOptions)
        return ExcelSink(target, schema, options, warnings)
    if target_format == "hdf5":
        assert isinstance(options, Hdf5Options)
        return Hdf5Sink(target, schema, compression=options.compression)
    if target_format == "arrow":
        assert isinstance(options, ArrowOptions)
        return ArrowSink(target, schema, options)
    if target_format == "orc":
        assert isinstance(options, OrcOptions)
        return OrcSink(target, schema, options)
    if target_format == "avro":
        from waybill_export_worker.conversion.avro import AvroSink

        assert isinstance(options, AvroOptions)
        return AvroSink(target, schema, options, warnings)
    if target_format == "netcdf":
        from waybill_export_worker.conversion.netcdf import NetcdfSink

        assert isinstance(options, NetcdfOptions)
        return NetcdfSink(target, schema, options, warnings)
    raise ConversionError(f"unknown output format {target_format!r}")
