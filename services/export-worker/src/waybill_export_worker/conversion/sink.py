"""What every writer (sink) offers the converter."""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

# Rows a sink takes per write: a cancel is checked between writes, which keeps it
# within a fraction of a second. A sink slower per value (Excel) takes fewer.
ROWS_PER_WRITE = 32_768


class Sink(Protocol):
    @property
    def rows_per_write(self) -> int: ...
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> None: ...
