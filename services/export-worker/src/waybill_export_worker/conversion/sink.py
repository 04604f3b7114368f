"""What every writer (sink) offers the converter."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa

# Rows a sink takes per write: a cancel is checked between writes, which keeps it
# within a fraction of a second. A sink slower per value (Excel) takes fewer.
ROWS_PER_WRITE = 32_768


class Sink(ABC):
    """Record batches written to one output format, streaming; `close` finishes the
    file. The registry (`writers.WRITERS`) opens every sink alike: (target, schema,
    the format's options, the warnings to add to)."""

    rows_per_write = ROWS_PER_WRITE

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
