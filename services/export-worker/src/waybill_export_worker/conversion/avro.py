"""Avro object container files. polars encodes each batch (its Rust writer: 0.18 s for
the 100 MB table, where fastavro's record-by-record writer took 10.5 s), and fastavro
joins the blocks into one container (`Writer.write_block`) with the codec asked for.
The encoding of a block depends only on the field types and their order, so the
schema in the header may name things as Avro requires (below) without touching them.

- Every field is a union of null and its type. Field names that are not Avro names
  (letters, digits, `_`, not starting with a digit) are written with each other
  character as `_`, the original name in the field's `doc`; warnings list them.
- Timestamps are microseconds: `timestamp-micros` for those with a time zone (their
  instant, UTC) and `local-timestamp-micros` for those without. A finer value is
  refused, not rounded.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.column_names import valid_names
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import AvroOptions

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RECORD_NAME = "table"


def avro_names(names: list[str]) -> list[str]:
    """Each column's Avro field name: itself if valid, else made valid and unique."""
    return valid_names(names, _avro_name)


def _avro_name(name: str) -> str:
    if _NAME.match(name):
        return name
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "_" + fixed if not fixed or fixed[0].isdigit() else fixed


class AvroSink(Sink):
    def __init__(
        self, path: Path, schema: pa.Schema, options: AvroOptions, warnings: list[str]
    ) -> None:
        # fastavro (~3 MB, ~80 ms) is imported by the conversions that use it only.
        import fastavro
        from fastavro.write import Writer

        self.arrow_schema = schema
        # Timestamps as polars writes them (microseconds, no zone: the instant's UTC
        # time for zoned ones, whose logical type the header then states).
        self.timestamps = {i: f.type for i, f in enumerate(schema) if pa.types.is_timestamp(f.type)}
        names = avro_names(schema.names)
        renamed = [(a, b) for a, b in zip(schema.names, names, strict=True) if a != b]
        if renamed:
            shown = ", ".join(f"{a!r} as {b!r}" for a, b in renamed[:10])
            more = f" and {len(renamed) - 10} more" if len(renamed) > 10 else ""
            warnings.append(f"columns renamed to Avro names: {shown}{more}")
        # The header's schema: polars' own for these types, named as Avro requires.
        empty = io.BytesIO()
        self._frame([]).write_avro(empty, name=RECORD_NAME)
        empty.seek(0)
        header = json.loads(fastavro.block_reader(empty).metadata["avro.schema"])
        for i, (field, name) in enumerate(zip(header["fields"], names, strict=True)):
            if name != schema.names[i]:
                field["name"], field["doc"] = name, schema.names[i]
            t = self.timestamps.get(i)
            if t is not None and t.tz is not None:
                field["type"] = ["null", {"type": "long", "logicalType": "timestamp-micros"}]
        self.file = path.open("wb")
        self.writer = Writer(self.file, fastavro.parse_schema(header), codec=options.codec)

    def _frame(self, batches: list[pa.RecordBatch]) -> pl.DataFrame:
        table = pa.Table.from_batches(batches, schema=self.arrow_schema)
        for i, t in self.timestamps.items():
            column = table.column(i)
            try:
                column = column.cast(pa.timestamp("us", tz=t.tz))
            except pa.ArrowInvalid as exc:
                raise ConversionError(
                    f"column {table.schema.names[i]!r} holds timestamps finer than a "
                    "microsecond, which Avro cannot"
                ) from exc
            table = table.set_column(i, table.schema.field(i).name, column.cast(pa.timestamp("us")))
        frame = pl.from_arrow(table, rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.write_frame(self._frame([batch]))

    def write_frame(self, frame: pl.DataFrame) -> None:
        """Rows already in polars' types for Avro (the polars engine's)."""
        import fastavro

        encoded = io.BytesIO()
        frame.write_avro(encoded, name=RECORD_NAME)
        encoded.seek(0)
        for block in fastavro.block_reader(encoded):
            self.writer.write_block(block)

    def close(self) -> None:
        try:
            self.writer.flush()
        finally:
            self.file.close()


# Avro's types as polars', for reading: anything else (records, arrays, maps, other
# unions) arrives as its JSON text.
_PRIMITIVE = {
    "null": pl.Null(),
    "boolean": pl.Boolean(),
    "int": pl.Int32(),
    "long": pl.Int64(),
    "float": pl.Float32(),
    "double": pl.Float64(),
    "bytes": pl.Binary(),
    "string": pl.String(),
}
_LOGICAL = {
    "date": pl.Date(),
    "timestamp-millis": pl.Datetime("ms", "UTC"),
    "timestamp-micros": pl.Datetime("us", "UTC"),
    "local-timestamp-millis": pl.Datetime("ms"),
    "local-timestamp-micros": pl.Datetime("us"),
    "time-millis": pl.Time(),
    "time-micros": pl.Time(),
    "uuid": pl.String(),
}


def _polars_type(avro: Any) -> pl.DataType | None:
    """The polars type for an Avro field type; None: kept as JSON text."""
    if isinstance(avro, list):
        rest = [t for t in avro if t != "null"]
        return _polars_type(rest[0]) if len(rest) == 1 else None
    if isinstance(avro, str):
        return _PRIMITIVE.get(avro)
    logical = avro.get("logicalType")
    if logical == "decimal":
        return pl.Decimal(avro.get("precision", 38), avro.get("scale", 0))
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if avro.get("type") == "enum":
        return pl.String()
    if avro.get("type") == "fixed":
        return pl.Binary()
    return _PRIMITIVE.get(avro.get("type", ""))


def avro_batches(
    path: Path, on_read: Callable[[int], None] | None, rows_per_batch: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """An Avro object container file of records, typed from its schema; nested
    values as their JSON text."""
    import fastavro

    size = path.stat().st_size
    with path.open("rb") as f:
        try:
            reader = fastavro.reader(f)
            fields = reader.writer_schema["fields"]  # type: ignore[index,call-overload]
        except (ValueError, KeyError, TypeError, EOFError) as exc:
            raise ConversionError(f"not a readable Avro file of records: {exc}") from exc
        names = [field["name"] for field in fields]  # type: ignore[index]
        types = [_polars_type(field["type"]) for field in fields]  # type: ignore[index]
        as_text = [n for n, t in zip(names, types, strict=True) if t is None]
        schema = {n: t if t is not None else pl.String() for n, t in zip(names, types, strict=True)}
        chunk: list[dict[str, Any]] = []

        def batch() -> pa.RecordBatch:
            for record in chunk if as_text else ():
                for name in as_text:
                    if record[name] is not None:
                        record[name] = json.dumps(record[name], default=str)
            frame = pl.DataFrame(chunk, schema=schema, orient="row")
            return frame.to_arrow().to_batches()[0]

        try:
            for record in reader:
                chunk.append(record)  # type: ignore[arg-type]
                if len(chunk) == rows_per_batch:
                    yield batch()
                    chunk = []
                    if on_read is not None:
                        on_read(min(f.tell(), size))
            if chunk:
                yield batch()
        except (ValueError, EOFError) as exc:
            raise ConversionError(f"unreadable Avro data: {exc}") from exc
    if on_read is not None:
        on_read(size)
