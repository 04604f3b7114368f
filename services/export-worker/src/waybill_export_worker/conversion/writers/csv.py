"""CSV and TSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.sink import Sink
from waybill_export_worker.conversion.writers.formulas import escape_formulas
from waybill_shared.export_options import CsvOptions


class CsvSink(Sink):
    """pyarrow's CSV writer (fast) for UTF-8 with '"' quotes; the csv module otherwise."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: CsvOptions, warnings: list[str]
    ) -> None:
        self.options = options
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
