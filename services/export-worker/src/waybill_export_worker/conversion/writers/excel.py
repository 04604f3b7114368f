"""Excel (.xlsx)."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from waybill_export_worker.conversion.archive import FastDeflateZipFile
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.sink import Sink
from waybill_export_worker.conversion.writers.formulas import FORMULA
from waybill_shared.export_options import ExcelOptions

EXCEL_MAX_ROWS = 1_048_575  # data rows per sheet, the header takes the first row
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL = 32_767
EXCEL_EXACT_INTEGER = 2**53
# A cancel is checked between writes. Excel costs ~10 us a cell (xlsxwriter; the other
# writers are 10-100x faster per value), so its writes are sized in cells: 32,768 rows
# took a second on a slow machine, whatever the width.
EXCEL_CELLS_PER_WRITE = 32_768


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class ExcelSink(Sink):
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
