"""Parquet inputs, row group by row group."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.readers.parts import batches_in_parts


def parquet_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"not a readable Parquet file: {exc}") from exc

    def stream() -> Iterator[pa.RecordBatch]:
        yield from batches_in_parts(
            pf.metadata.num_row_groups,
            lambda index: pf.iter_batches(row_groups=[index], batch_size=65_536),
            path.stat().st_size,
            on_read,
        )

    return pf.schema_arrow, stream()
