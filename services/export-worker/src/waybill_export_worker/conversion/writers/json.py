"""JSON Lines, or one JSON array of records."""

from __future__ import annotations

import io
import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import JsonOptions


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


class JsonSink(Sink):
    """JSON Lines, or one array with orient=records. Floats are written with Python's
    shortest round-trip repr: every value reads back exactly."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: JsonOptions, warnings: list[str]
    ) -> None:
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
