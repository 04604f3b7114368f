"""JSON outputs: JSON Lines and arrays, every float exact."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from export_worker.conversion.tables import TRICKY, run

from support.conversion import convert_file


def test_json_lines_and_records_round_trip_every_float(tmp_path: Path) -> None:
    target, _ = run(tmp_path, TRICKY, "json")
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows[0]["score"] == 2.27e-15 and rows[1]["score"] is None and rows[0]["id"] == "007"
    records, _ = run(tmp_path, TRICKY, "json", {"orient": "records"})
    assert json.loads(records.read_text()) == rows
    # JSON has no NaN or infinity: null (the text "nan" is an NA marker besides).
    specials, _ = run(tmp_path, "x\n1.5\nnan\ninf\n-inf\n1e400\n", "json")
    assert [json.loads(line)["x"] for line in specials.read_text().splitlines()] == [
        1.5,
        *[None] * 4,
    ]


def test_json_output_is_the_same_for_string_and_large_string_columns(tmp_path: Path) -> None:
    """Parquet written by polars holds large_string: it takes the same (fast, polars)
    JSON writer as string columns, byte for byte (it took Python's, 6x slower), and
    so do floats with NaN or infinity, written as null."""
    outputs = []
    for text_type in (pa.string(), pa.large_string()):
        source = tmp_path / "in.parquet"
        columns = {"id": [1, 2], "name": pa.array(["a", None], text_type), "x": [float("nan"), 2.5]}
        pq.write_table(pa.table(columns), source)
        target = tmp_path / "out.json"
        convert_file(source, "parquet", target, "json")
        outputs.append(target.read_bytes())
    assert (
        outputs[0] == outputs[1] == b'{"id":1,"name":"a","x":null}\n{"id":2,"name":null,"x":2.5}\n'
    )
