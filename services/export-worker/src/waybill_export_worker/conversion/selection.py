"""Column selection and row filter (`export_options.columns` / `.filter`), compiled
against the file's inferred types into one polars expression: pushed into polars'
lazy CSV query (polars_engine), and evaluated batch by batch on the general path
(`Selection.apply`), so that neither holds more than a batch.

Semantics (docs/EXPORT-OPTIONS.md): comparisons follow the column's type (a number
column takes numbers, a text column text, a date column ISO text); NA (and NaN) never
passes a comparison, only `is_null`; an unknown column or a value of the wrong type
is this file's error, found before any row is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError
from waybill_shared.export_options import AllOf, AnyOf, Condition, ExportOptions, conditions

Node = Condition | AllOf | AnyOf
_COMPARE = {
    "=": pl.Expr.__eq__,
    "!=": pl.Expr.__ne__,
    "<": pl.Expr.__lt__,
    "<=": pl.Expr.__le__,
    ">": pl.Expr.__gt__,
    ">=": pl.Expr.__ge__,
}


class Selection:
    """What to keep of one file whose columns (in order) and polars types are
    `schema`: `columns` to write, in order; `needed` to read (those and the filter's,
    in the file's order); `predicate` (None: every row). Counts rows as `apply` goes."""

    def __init__(self, schema: dict[str, pl.DataType], options: ExportOptions) -> None:
        columns: list[str] | None = getattr(options, "columns", None)
        node: Node | None = getattr(options, "filter", None)
        tested = [c.column for c in conditions(node)] if node is not None else []
        unknown = [c for c in dict.fromkeys([*(columns or []), *tested]) if c not in schema]
        if unknown:
            raise ConversionError(
                f"no column {', '.join(map(repr, unknown))} in this file (its columns: "
                f"{_listing(list(schema))})"
            )
        self.all = list(schema)
        self.columns = columns or self.all
        wanted = set(self.columns) | set(tested)
        self.needed = [c for c in self.all if c in wanted]
        self.tested = [c for c in self.all if c in tested]
        self.predicate = _compile(node, schema) if node is not None else None
        self.rows_read = 0
        self.rows_written = 0

    @property
    def narrows(self) -> bool:
        """Whether fewer columns than the file's are read."""
        return len(self.needed) < len(self.all)

    @property
    def reorders(self) -> bool:
        return self.columns != self.needed

    def schema_of(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([schema.field(name) for name in self.columns])

    def apply(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The rows that pass, in the selected columns; empty batches are dropped."""
        for batch in batches:
            self.rows_read += batch.num_rows
            if self.predicate is not None:
                tested = pl.from_arrow(batch.select(self.tested))
                assert isinstance(tested, pl.DataFrame)
                mask = tested.select(self.predicate.fill_null(False)).to_series().to_arrow()
                batch = batch.filter(mask)
            if self.columns != self.all:
                batch = batch.select(self.columns)
            self.rows_written += batch.num_rows
            if batch.num_rows:
                yield batch


def _listing(names: list[str], at_most: int = 20) -> str:
    shown = ", ".join(map(repr, names[:at_most]))
    return shown + (f" and {len(names) - at_most} more" if len(names) > at_most else "")


def _compile(node: Node, schema: dict[str, pl.DataType]) -> pl.Expr:
    if isinstance(node, Condition):
        return _condition(node, schema[node.column])
    parts = [
        _compile(child, schema) for child in (node.all if isinstance(node, AllOf) else node.any)
    ]
    return pl.all_horizontal(parts) if isinstance(node, AllOf) else pl.any_horizontal(parts)


def _condition(condition: Condition, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(condition.column)
    if dtype.is_float():
        column = column.fill_nan(None)  # NaN is NA here, as everywhere in a conversion
    elif isinstance(dtype, (pl.Categorical, pl.Enum)):
        column, dtype = column.cast(pl.String), pl.String()
    op = condition.op
    if op == "is_null":
        return column.is_null()
    if op == "not_null":
        return column.is_not_null()
    if op == "contains":
        if dtype != pl.String:
            raise _mismatch(condition, dtype)
        return column.str.contains(str(condition.value), literal=True)
    if dtype == pl.Null:  # a column with no value: no comparison holds
        return pl.lit(False)
    raw = condition.value if isinstance(condition.value, list) else [condition.value]
    if dtype.is_integer() and not all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in raw):
        column, dtype = column.cast(pl.Float64), pl.Float64()
    values = _typed(raw, dtype, condition)
    if op == "in":
        return column.is_in(values.implode())
    return _COMPARE[op](column, pl.lit(values[0], dtype=values.dtype))


def _typed(values: list[Any], dtype: pl.DataType, condition: Condition) -> pl.Series:
    """The filter's values as a Series of the column's type, or the mismatch named."""
    if dtype.is_numeric():
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    elif dtype == pl.String:
        ok = all(isinstance(v, str) for v in values)
    elif dtype == pl.Boolean:
        ok = all(isinstance(v, bool) for v in values)
    elif dtype.is_temporal() and not isinstance(dtype, pl.Duration):
        if not all(isinstance(v, str) for v in values):
            raise _mismatch(condition, dtype)
        text = pl.Series(values, dtype=pl.String)
        try:
            if dtype == pl.Date:
                return text.str.to_date()
            if dtype == pl.Time:
                return text.str.to_time()
            assert isinstance(dtype, pl.Datetime)
            return text.str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone)
        except pl.exceptions.PolarsError as exc:
            raise _mismatch(condition, dtype) from exc
    else:
        ok = False
    if not ok:
        raise _mismatch(condition, dtype)
    if dtype.is_numeric():
        # As given (Int64 or Float64): polars compares them with any number column,
        # where a cast to a narrow one (300 to UInt8) would lose the value.
        exact = all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in values)
        return pl.Series(values, dtype=pl.Int64 if exact else pl.Float64)
    return pl.Series(values, dtype=dtype)


def _kind(dtype: pl.DataType) -> str:
    if dtype.is_numeric():
        return "numbers"
    if dtype == pl.String:
        return "text"
    if dtype == pl.Boolean:
        return "booleans (true/false)"
    if dtype == pl.Date:
        return "dates (as ISO text: 2024-01-31)"
    if dtype.is_temporal():
        return f"{dtype} values (as ISO text)"
    return f"{dtype} values, which only is_null and not_null test"


def _mismatch(condition: Condition, dtype: pl.DataType) -> ConversionError:
    return ConversionError(
        f"filter on {condition.column!r}: the column holds {_kind(dtype)}; "
        f"{condition.op} {condition.value!r} does not apply to them"
    )
