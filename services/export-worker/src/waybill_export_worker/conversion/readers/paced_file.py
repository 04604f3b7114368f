"""The file under pyarrow's streaming CSV reader, read no further ahead than the
consumer needs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO


class PacedFile:
    """The file under pyarrow's streaming CSV reader, which reads up to 32 blocks ahead
    on its own I/O thread: when the writer is the slower side (HDF5, Excel) that was
    128 MB of 4 MiB blocks, filled over the first seconds of every large file. A read
    here waits while `ahead` blocks are unconsumed (the consumer calls `consumed_one`
    per batch, one per block); the wait is short-lived, so a block that yields no batch
    only slows the reader, it cannot stall it."""

    def __init__(self, path: Path, *, ahead: int) -> None:
        self.raw: IO[bytes] = path.open("rb")
        self.ahead = ahead
        self.offsets: list[int] = []  # end offset of each block read
        self.consumed = 0
        self.changed = threading.Condition()

    def read(self, n: int = -1) -> bytes:
        with self.changed:
            self.changed.wait_for(
                lambda: len(self.offsets) - self.consumed < self.ahead or self.raw.closed,
                timeout=0.5,
            )
        data = self.raw.read(n)
        with self.changed:
            self.offsets.append(self.raw.tell())
        return data

    def consumed_one(self) -> None:
        with self.changed:
            self.consumed += 1
            self.changed.notify_all()

    @property
    def consumed_bytes(self) -> int:
        """How far the consumer has got: the end of the last block it took."""
        with self.changed:
            index = min(self.consumed, len(self.offsets)) - 1
            return self.offsets[index] if index >= 0 else 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        with self.changed:
            self.raw.close()
            self.changed.notify_all()

    @property
    def closed(self) -> bool:
        return self.raw.closed
