"""Spreadsheet safety: text a spreadsheet would run as a formula (OWASP CSV
injection), for the CSV and Excel writers and the polars engine."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# = + - @ tab CR at the start. Both engines use these (RE2 for pyarrow, Rust regex for
# polars: the same syntax).
FORMULA = r"^[=+\-@\t\r]"
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


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
