"""Excel inputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import run

from support.conversion import convert_file
from waybill_export_worker.conversion.readers import excel as excel_reader


def test_an_excel_input_whose_types_change_in_a_later_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Types come from the first chunk of rows; a later chunk's float, text or first
    value widens its column and the file is read again: nothing is cast unsafely
    (a late 1.5 in an int column was written as 1)."""
    monkeypatch.setattr(excel_reader, "CHUNK_ROWS", 10)
    text = "id,count,label,empty\n" + "".join(f"{i},{i},{i},\n" for i in range(30))
    text += "30,2.5,x,late\n"
    book, _ = run(tmp_path, text, "excel", {"formula_escape": False})
    target = tmp_path / "from_excel.parquet"
    result = convert_file(book, "excel", target, "parquet")
    table = pq.read_table(target)
    assert result.rows == 31
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.string()]
    seen: list[int] = []
    convert_file(book, "excel", tmp_path / "again.csv", "csv", on_progress=seen.append)
    size = book.stat().st_size
    assert seen == sorted(seen) and seen[-1] == size and 0 < seen[0] < size  # chunk by chunk
    assert table.column("count").to_pylist() == [*map(float, range(30)), 2.5]
    assert table.column("label").to_pylist() == [*map(str, range(30)), "x"]
    assert table.column("empty").to_pylist() == [None] * 30 + ["late"]
