"""Types a format lacks, written in a form that reads back."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import read_back

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionError,
    output_filename,
)


def test_nested_values_reach_flat_formats_as_json_text(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1, "n": {"b": "x"}, "l": [1, 2]}\n{"a": 2, "n": null, "l": []}\n')
    texts = {}
    for fmt in ("csv", "hdf5", "excel", "parquet"):
        target = tmp_path / output_filename("out", fmt)
        convert_file(source, "jsonl", target, fmt)
        if fmt == "excel":
            values = list(openpyxl.load_workbook(target).active.values)[1:]
            texts[fmt] = [(row[1], row[2]) for row in values]
        else:
            texts[fmt] = [(r["n"], r["l"]) for r in read_back(target, fmt)]
    flat = [('{"b": "x"}', "[1, 2]"), (None, "[]")]
    assert texts["csv"] == texts["hdf5"] == texts["excel"] == flat
    assert texts["parquet"] == [({"b": "x"}, [1, 2]), (None, [])]  # nesting kept


def test_parquet_types_a_format_lacks_are_written_in_a_form_that_reads_back(
    tmp_path: Path,
) -> None:
    """Binary as base64, durations as seconds, integers past 2**53 exact (as text in
    Excel, which rounds numbers to doubles); an unsigned value past int64 fails the
    file with a reason in Excel and HDF5; Parquet keeps every type."""
    source = tmp_path / "in.parquet"
    table = pa.table(
        {
            "blob": pa.array([b"\x00\xff", None]),
            "took": pa.array([1_500_000, None], pa.duration("us")),
            "big": pa.array([2**60 + 1, -5], pa.int64()),
            "u": pa.array([7, None], pa.uint64()),
        }
    )
    pq.write_table(table, source)

    def export(fmt: str, data: pa.Table = table) -> Path:
        pq.write_table(data, source)
        target = tmp_path / output_filename("out", fmt)
        convert_file(source, "parquet", target, fmt)
        return target

    expected = {"blob": "AP8=", "took": 1.5, "big": 2**60 + 1, "u": 7}
    assert json.loads(export("json").read_text().splitlines()[0]) == expected
    cells = pd.read_csv(export("csv"), dtype=str).iloc[0].tolist()
    assert cells == ["AP8=", "1.5", str(2**60 + 1), "7"]
    sheet = list(openpyxl.load_workbook(export("excel")).active.values)
    assert sheet[1] == ("AP8=", 1.5, str(2**60 + 1), 7) and sheet[2][2] == -5
    with h5py.File(export("hdf5")) as f:
        assert f["table/2"][0] == 2**60 + 1 and f["table/0"][0] == b"AP8="
    assert pq.read_table(export("parquet")).equals(table)
    too_big = table.set_column(3, "u", pa.array([2**64 - 1, None], pa.uint64()))
    for fmt in ("excel", "hdf5"):
        with pytest.raises(ConversionError, match="column 'u' holds integers past int64"):
            export(fmt, too_big)
