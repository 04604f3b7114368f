"""The column types of a text table, judged from its raw text: the narrowest type that
keeps every value (ids with leading zeros stay text, NA markers are null, nothing is
ever rounded), and how a type widens when a later value does not fit it
(null -> int -> float -> string; null -> bool -> string)."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
import pyarrow as pa

NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A"]
# Patterns for the type inference. Integers without a sign or leading zero only:
# arrow's int parser refuses "+5" (it stays a float), and "007" is an id (text).
_INT = r"^-?(0|[1-9][0-9]*)$"
_LEADING_ZERO_INT = r"^[+-]?0[0-9]+$"
_FLOAT = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|Inf|INF|infinity|Infinity)$"
BOOLS = ["true", "false", "True", "False", "TRUE", "FALSE"]
SIGNED_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_WIDER = {
    pa.null(): pa.int64(),
    pa.int64(): pa.float64(),
    pa.float64(): pa.string(),
    pa.bool_(): pa.string(),
}
INFER_CELLS = 500_000


def decide(stats: dict[str, Any]) -> pa.DataType:
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


def join_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding the values of both (null < int < float < string,
    null < bool < string)."""
    if a == b or b == pa.null():
        return a
    if a == pa.null():
        return b
    if {a, b} == {pa.int64(), pa.float64()}:
        return pa.float64()
    return pa.string()


def wider_type(current: pa.DataType, *, overflow: bool) -> pa.DataType | None:
    """The next type up for a column whose `current` type refused a value (None: text
    holds anything, there is nothing wider). An integer past int64 (`overflow`) goes
    straight from int to text: a float would change its value."""
    if overflow and current == pa.int64():
        return pa.string()
    return _WIDER.get(current)


def infer_types(
    sample: pa.RecordBatch, max_cells: int | None = INFER_CELLS
) -> tuple[list[pa.DataType], set[str]]:
    """Per column of a raw-text sample: its type (`decide`), and the NA markers the
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
    return [decide(found[name]) for name in frame.columns], markers
