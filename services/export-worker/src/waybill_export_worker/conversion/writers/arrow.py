"""The Arrow IPC file format (Feather v2)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import ArrowOptions


class ArrowSink(Sink):
    """The Arrow IPC file format (Feather v2), every type kept."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: ArrowOptions, warnings: list[str]
    ) -> None:
        compression = None if options.compression == "none" else options.compression
        self.writer = pa.ipc.new_file(
            str(path), schema, options=pa.ipc.IpcWriteOptions(compression=compression)
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()
