"""The conversion alone, as the export-worker runs it (same function, same thread caps),
without the service around it: CSV -> Parquet of one file, N times; prints each time.

    python bench/pipeline/bare_conversion.py SOURCE.csv N
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from waybill_export_worker import conversion
from waybill_export_worker.conversion.cpus import cap_engine_threads
from waybill_shared.export_options import parse_export_options


def main() -> None:
    source, count = Path(sys.argv[1]), int(sys.argv[2])
    cap_engine_threads()
    options = parse_export_options("parquet", {})
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            target = Path(tmp) / f"out-{i}.parquet"
            started = time.perf_counter()
            conversion.convert(
                source=source,
                source_format="csv",
                target=target,
                target_format="parquet",
                options=options,
            )
            print(f"{time.perf_counter() - started:.4f}", flush=True)
            target.unlink()


if __name__ == "__main__":
    main()
