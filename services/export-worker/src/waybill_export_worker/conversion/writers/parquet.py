"""Parquet, every type kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import ParquetOptions


class ParquetSink(Sink):
    def __init__(
        self, path: Path, schema: pa.Schema, options: ParquetOptions, warnings: list[str]
    ) -> None:
        self.options = options
        self.writer = pq.ParquetWriter(
            str(path),
            schema,
            compression=None if options.compression == "none" else options.compression,
            use_dictionary=options.use_dictionary,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch, row_group_size=self.options.row_group_size)

    def close(self) -> None:
        self.writer.close()
