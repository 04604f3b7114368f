"""The converter end to end: a CSV through the fast path to Parquet, inputs of every
kind, empty and refused files, options refused, and a cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import TRICKY, run

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionCancelled,
    ConversionError,
)
from waybill_shared.export_options import parse_export_options


def test_parquet_round_trip_keeps_types_na_and_text(tmp_path: Path) -> None:
    target, _ = run(tmp_path, TRICKY, "parquet")
    table = pq.read_table(target)
    # ids with leading zeros stay text (polars writes Arrow's large_string: UTF-8 all the same)
    assert str(table.schema.field("id").type) in ("string", "large_string")
    assert str(table.schema.field("count").type) == "int64"  # ints stay ints, NA stays null
    got = table.to_pylist()
    assert [r["id"] for r in got] == ["007", "010", "011"]
    assert [r["count"] for r in got] == [1, 2, None]
    assert [r["score"] for r in got] == [2.27e-15, None, -3.5]
    assert got[2]["name"] is None and got[0]["note"] == "line one\nline two"


def test_inputs_jsonl_json_array_parquet_excel_hdf5(tmp_path: Path) -> None:
    parquet, _ = run(tmp_path, TRICKY, "parquet")
    for name, fmt in ((parquet, "parquet"),):
        out = tmp_path / "p.csv"
        convert_file(name, fmt, out, "csv", {"formula_escape": False})
        assert pd.read_csv(out, dtype={"id": str})["id"].tolist() == ["007", "010", "011"]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n')
    out = tmp_path / "j.parquet"
    convert_file(jsonl, "jsonl", out, "parquet")
    assert pq.read_table(out).to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    array = tmp_path / "in.json"
    array.write_text('[{"a": 1, "b": "x"}, {"a": 2.5, "b": null}]')
    out = tmp_path / "a.parquet"
    convert_file(array, "json", out, "parquet")
    assert pq.read_table(out).column("a").to_pylist() == [1, 2.5]
    excel, _ = run(tmp_path, TRICKY, "excel", {"formula_escape": False})
    out = tmp_path / "x.json"
    convert_file(excel, "excel", out, "json")
    assert json.loads(out.read_text().splitlines()[0])["id"] == "007"
    hdf5, _ = run(tmp_path, TRICKY, "hdf5")
    out = tmp_path / "h.parquet"
    convert_file(hdf5, "hdf5", out, "parquet")
    assert pq.read_table(out).column("count").to_pylist() == [1, 2, None]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "json", "excel", "hdf5"):
        target, result = run(tmp_path, "a,b\n", fmt)
        assert result.rows == 0 and target.exists()
    target, result = run(tmp_path, "", "csv")
    assert result.rows == 0


def test_not_tabular_or_corrupt_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="not a tabular"):
        run(tmp_path, "\x00\x01", "csv", source_format="binary")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1garbage")
    with pytest.raises(ConversionError):
        convert_file(bad, "parquet", tmp_path / "o.csv", "csv")


def test_cancel_between_batches(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("a\n" + "1\n" * 10)
    with pytest.raises(ConversionCancelled):
        convert_file(source, "csv", tmp_path / "c.parquet", "parquet", should_stop=lambda: True)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        parse_export_options("csv", {"bogus": 1})
    with pytest.raises(ValueError, match="compression"):
        parse_export_options("parquet", {"compression": "rar"})
