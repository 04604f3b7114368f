"""Values a format has no type for, converted on their way to its writer."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.sink import Sink

# A batch's column (and its name, for errors) in the form a format can hold.
ColumnConversion = Callable[[pa.Array, str], pa.Array]
KEEPS_EVERY_TYPE = ("parquet", "arrow")


class Portable(Sink):
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
        self.rows_per_write = sink.rows_per_write

    @staticmethod
    def plan(
        schema: pa.Schema, target_format: str
    ) -> tuple[pa.Schema, dict[int, tuple[pa.DataType, ColumnConversion]]]:
        """The schema the sink is opened with, and per column changed: (its type
        there, how to convert a batch's column)."""
        conversions: dict[int, tuple[pa.DataType, ColumnConversion]] = {}
        if target_format in KEEPS_EVERY_TYPE:
            return schema, conversions
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
