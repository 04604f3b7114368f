"""Excel inputs: the first sheet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError, Restart
from waybill_export_worker.conversion.readers.csv_inference import join_types

CHUNK_ROWS = 50_000


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
                if len(block) >= CHUNK_ROWS:
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
            else [join_types(t, f) for t, f in zip(self.types, found, strict=True)]
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
