"""JSON inputs: JSON Lines and JSON arrays, typed from the whole file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import read_back

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionError,
    output_filename,
)


@pytest.mark.parametrize("late_row", [30_000, 3], ids=["past-first-block", "in-first-block"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_json_lines_whose_types_change_late_keep_every_value(
    tmp_path: Path, fmt: str, late_row: int
) -> None:
    """JSON Lines are typed from the whole file, not a first block: the float makes
    its column float, text after nulls is text, a late field is a column, and an
    integer past int64 keeps its digits as text (pyarrow's reader failed on the late
    ones and read 2**70 as a float)."""
    records: list[dict[str, object]] = [
        {"id": i, "count": i, "note": None, "big": i} for i in range(40_000)
    ]
    records[late_row] = {"id": late_row, "count": 2.5, "note": "late", "big": 2**70, "new": True}
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert late_row < 100 or source.stat().st_size > 1024 * 1024
    target = tmp_path / output_filename("out", fmt)
    result = convert_file(source, "jsonl", target, fmt)
    assert result.rows == 40_000
    if fmt == "csv":  # as text: the CSV cells themselves
        rows = pd.read_csv(target, dtype=str, keep_default_na=False).to_dict(orient="records")
        expected = ["2.5", "late", str(2**70), "true"]
        first, last = ["0", "", "0", ""], ["39999", "", "39999", ""]
    else:
        rows = read_back(target, fmt)
        expected = [2.5, "late", str(2**70), True]
        first, last = [0.0, None, "0", None], [39999.0, None, "39999", None]
    columns = ("count", "note", "big", "new")
    assert [rows[late_row][k] for k in columns] == expected
    assert [rows[0][k] for k in columns] == first and [rows[-1][k] for k in columns] == last


def test_json_array_inputs_read_like_json_lines(tmp_path: Path) -> None:
    """Pretty-printed, with a line break escaped inside a string, an int column that
    turns float, and an integer past int64 beside one past 2**53 (DuckDB's own typing
    made that column a double and rounded both); items that are not records fail."""
    source = tmp_path / "in.json"
    source.write_text(
        '[\n  {\n    "id": 1,\n    "note": "two\\nlines",\n    "big": 1152921504606846977\n  },\n'
        '  {"id": 2.5, "note": null, "big": 1180591620717411303424}\n]\n'
    )
    target = tmp_path / "out.parquet"
    convert_file(source, "json", target, "parquet")
    assert pq.read_table(target).to_pylist() == [
        {"id": 1.0, "note": "two\nlines", "big": "1152921504606846977"},
        {"id": 2.5, "note": None, "big": "1180591620717411303424"},
    ]
    assert not list(tmp_path.glob("*.lines"))  # the JSON Lines beside it are gone
    source.write_text("[1, 2, 3]")
    with pytest.raises(ConversionError, match="not readable as a JSON array of records"):
        convert_file(source, "json", target, "parquet")


def test_a_json_array_input_reports_progress_through_the_file(tmp_path: Path) -> None:
    """DuckDB's own progress for splitting the array, which moves per buffer it reads
    (~32 MB): the file must span several; then the read of the records."""
    source = tmp_path / "in.json"
    n = 2_000_000
    pl.DataFrame({"id": range(n), "x": [i / 3 for i in range(n)]}).write_json(source)
    assert source.stat().st_size > 64 * 1024 * 1024
    seen: list[int] = []
    result = convert_file(
        source, "json", tmp_path / "out.parquet", "parquet", on_progress=seen.append
    )
    size = source.stat().st_size
    assert result.rows == n
    assert seen == sorted(seen) and seen[-1] == size
    assert len({v for v in seen if 0 < v < size}) >= 2  # it moves, not one jump to the end
