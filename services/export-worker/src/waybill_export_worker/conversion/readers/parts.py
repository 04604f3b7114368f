"""Files read part by part (row groups, record batches, stripes), progress after each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa


def batches_in_parts(
    parts: int,
    read_part: Callable[[int], Iterable[pa.RecordBatch]],
    size: int,
    on_read: Callable[[int], None] | None,
) -> Iterator[pa.RecordBatch]:
    """Each part's batches in order; after each, that share of the file's `size` is
    reported read."""
    for index in range(parts):
        yield from read_part(index)
        if on_read is not None:
            on_read(size * (index + 1) // parts)


def then_all_read(
    batches: Iterable[pa.RecordBatch], size: int, on_read: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """`batches`, then the whole file reported read."""
    yield from batches
    if on_read is not None:
        on_read(size)
