"""The reader registry: every input format but CSV opens through it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from waybill_export_worker.conversion import ConversionError
from waybill_export_worker.conversion.readers import READERS, open_reader


def test_the_registered_inputs() -> None:
    assert set(READERS) == {
        "json",
        "jsonl",
        "parquet",
        "excel",
        "hdf5",
        "arrow",
        "orc",
        "avro",
        "netcdf",
    }


def test_a_format_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"not a tabular file \(detected format: binary\)"):
        open_reader(tmp_path / "x.bin", "binary", lambda _: None)


def test_each_attempt_reads_from_the_start(tmp_path: Path) -> None:
    """The schema, then the batches, once per attempt: a restart reads it all again."""
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    seen: list[int] = []
    schema_of, batches = open_reader(path, "parquet", seen.append)
    for _ in range(2):
        assert schema_of() == pa.schema([("a", pa.int64())])
        assert [b.num_rows for b in batches()] == [3]
    assert seen == [path.stat().st_size] * 2
