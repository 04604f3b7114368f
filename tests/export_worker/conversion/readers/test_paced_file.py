"""The paced file under pyarrow's reader: no further ahead than asked."""

from __future__ import annotations

import time
from pathlib import Path

from waybill_export_worker.conversion.readers.paced_file import PacedFile


def test_a_read_past_the_blocks_ahead_waits_for_the_consumer(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(bytes(range(10)) * 10)
    paced = PacedFile(path, ahead=2)
    try:
        assert paced.read(10) and paced.read(10) and paced.consumed_bytes == 0
        started = time.monotonic()
        paced.read(10)  # two unconsumed: it waits (half a second at most)
        assert time.monotonic() - started >= 0.4
        paced.consumed_one()
        assert paced.consumed_bytes == 10
        for _ in range(3):
            paced.consumed_one()
        assert paced.consumed_bytes == 30  # never past what was read
        started = time.monotonic()
        paced.read(10)
        assert time.monotonic() - started < 0.4
    finally:
        paced.close()
    assert paced.closed
