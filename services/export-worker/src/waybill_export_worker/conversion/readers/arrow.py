"""Arrow IPC inputs (Feather v2, and the IPC stream format)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.readers.parts import batches_in_parts, then_all_read


def arrow_batches(
    path: Path, on_read: Callable[[int], None] | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """An Arrow IPC file batch by batch, its pages mapped rather than read; the IPC
    stream format, batches in order."""
    size = path.stat().st_size
    try:
        source = pa.memory_map(str(path))
        try:
            ipc = pa.ipc.open_file(source)
        except pa.ArrowInvalid:  # the IPC stream format: batches in order
            source.seek(0)
            stream_reader = pa.ipc.open_stream(source)
            return stream_reader.schema, then_all_read(stream_reader, size, on_read)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"not a readable Arrow IPC file: {exc}") from exc
    return ipc.schema, then_all_read(
        batches_in_parts(ipc.num_record_batches, lambda i: [ipc.get_batch(i)], size, on_read),
        size,
        on_read,
    )
