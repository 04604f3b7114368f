"""ORC."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import OrcOptions


class OrcSink(Sink):
    """pyarrow's ORC writer: one stripe per `stripe_size` bytes."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: OrcOptions, warnings: list[str]
    ) -> None:
        import pyarrow.orc as orc

        self.schema = schema
        self.written = False
        self.writer = orc.ORCWriter(
            str(path),
            compression="uncompressed" if options.compression == "none" else options.compression,
            stripe_size=options.stripe_size,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write(pa.Table.from_batches([batch]))
        self.written = True

    def close(self) -> None:
        if not self.written:  # else the file is left empty, which no reader opens
            self.writer.write(pa.Table.from_batches([], schema=self.schema))
        self.writer.close()
