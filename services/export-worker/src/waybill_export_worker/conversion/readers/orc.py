"""ORC inputs, stripe by stripe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.readers.parts import batches_in_parts, then_all_read


def orc_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    size = path.stat().st_size
    try:
        import pyarrow.orc as orc

        orc_file = orc.ORCFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"not a readable ORC file: {exc}") from exc

    stripes = batches_in_parts(
        orc_file.nstripes, lambda i: [orc_file.read_stripe(i)], size, on_read
    )
    return orc_file.schema, then_all_read(stripes, size, on_read)
