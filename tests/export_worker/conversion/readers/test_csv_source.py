"""CSV and TSV inputs on the general path (pyarrow's reader, our writers): types
widened and the file read again when a later value does not fit, the whole-file type
pass, the sample, the header, text encodings, and streaming in many blocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import AGREE, read_back, run

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionCancelled,
    ConversionError,
    detect_format,
    polars_engine,
)
from waybill_export_worker.conversion.readers import csv_source


def test_type_widening_never_changes_a_value(tmp_path: Path) -> None:
    rows = ["x,y,z"] + [f"{i},{i},{i}" for i in range(5000)] + ["1.5,text,99999999999999999999"]
    source = tmp_path / "late.csv"
    source.write_text("\n".join(rows) + "\n")
    target = tmp_path / "late.parquet"
    convert_file(source, "csv", target, "parquet")
    # tiny blocks force the late values into later batches
    table = pq.read_table(target)
    assert table.column("x").to_pylist()[-1] == 1.5
    assert table.column("y").to_pylist()[-1] == "text" and table.column("y").to_pylist()[0] == "0"
    assert table.column("z").to_pylist()[-1] == "99999999999999999999"


def test_hdf5_and_excel_widen_and_learn_markers_as_the_sinks_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The general path (pyarrow's reader, our writers) restarts like polars' sinks
    when a value past the sample needs a wider column (3.5 in an int column, an int64
    overflow) or is an NA marker the sample never saw: the same rows, the same types."""
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 4096)  # the late values are past the sample
    fast, _ = run(tmp_path, AGREE, "parquet")
    general, result = run(tmp_path, AGREE, "hdf5")
    assert result.rows == 3005
    assert read_back(general, "hdf5") == read_back(fast, "parquet")
    assert pq.read_table(fast).schema.field("count").type == pa.float64()

    book, _ = run(tmp_path, AGREE, "excel")
    rows = list(openpyxl.load_workbook(book, read_only=True).worksheets[0].values)
    assert rows[-2][3:6] == (1.5e300, 3.5, "99999999999999999999")
    assert rows[-1][1:] == (None,) * 6


@pytest.mark.parametrize("fmt", ["parquet", "hdf5"])  # polars' sink, and the general path
def test_a_sparse_matrix_whose_columns_turn_decimal_past_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Every count column is 0 throughout the sample and holds decimals later, more
    columns than a conversion may restart: the whole file settles the types in one
    pass instead. Each value survives; the column that stays whole stays int; an NA
    marker first seen late is null."""
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 4096)  # a 4 KiB sample: ~40 rows
    width = polars_engine.MAX_RESTARTS + 16
    header = "cell,whole," + ",".join(f"g{j}" for j in range(width))
    lines = [f"c{i},{i}," + ",".join(["0"] * width) for i in range(400)]
    lines += [f"c{i},N/A," + ",".join(f"{j}.25" for j in range(width)) for i in range(400, 410)]
    target, result = run(tmp_path, "\n".join([header, *lines]) + "\n", fmt)
    assert result.rows == 410
    rows = read_back(target, fmt)
    assert [r["whole"] for r in rows] == [*range(400), *[None] * 10]
    assert [r["g7"] for r in rows] == [0.0] * 400 + [7.25] * 10
    assert all(r[f"g{j}"] == j + 0.25 for r in rows[400:] for j in range(width))
    types = pq.read_schema(target).types if fmt == "parquet" else None
    if types is not None:
        assert types[1] == pa.int64() and set(types[2:]) == {pa.float64()}


def test_the_whole_file_type_pass_stops_on_cancel(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("a,b\n" + "1,2\n" * 1000)
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return True

    csv_file = csv_source.CsvSource(source, delimiter=",", on_read=None, should_stop=should_stop)
    with pytest.raises(ConversionCancelled):
        csv_file.settle_types()
    assert calls == [1]


def test_sample_cut_inside_a_quoted_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The type sample is the first block cut at its last newline; when that newline
    is inside a quoted field, the partial row is not taken for a row: values and
    types come out right."""
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 4096)
    lines = ["n,text"] + [f"{i},plain {i}" for i in range(300)]
    body = "\n".join(lines) + "\n"
    quoted = '300,"' + "\n".join(f"part {j}" for j in range(100)) + '"\n'
    assert len(body) < 4096 < len(body) + len(quoted)  # the block ends inside the quotes
    target, result = run(tmp_path, body + quoted + "301,after\n", "parquet")
    table = pq.read_table(target)
    assert result.rows == 302 and table.column("n").type == "int64"
    assert table.column("text").to_pylist()[300].count("\n") == 99
    assert table.column("text").to_pylist()[301] == "after"


@pytest.mark.parametrize("fmt", ["csv", "excel"])  # polars' sinks, and the general path
def test_header_with_bom_blank_lines_and_quoted_names(tmp_path: Path, fmt: str) -> None:
    text = '\ufeff\n"id, the first","note\non two lines"\n7,x\n'
    target, result = run(tmp_path, text, fmt)
    if fmt == "csv":
        assert list(pd.read_csv(target).columns) == ["id, the first", "note\non two lines"]
    else:
        first = next(openpyxl.load_workbook(target).active.iter_rows(values_only=True))
        assert first == ("id, the first", "note\non two lines")
    assert result.rows == 1


def test_text_encodings_of_csv_inputs(tmp_path: Path) -> None:
    """Excel on Windows saves CSV as Windows-1252: read as such, and said so; UTF-8
    stays UTF-8 even when the first MiB ends inside a character; UTF-16 and binary
    files are refused with the reason."""
    windows = tmp_path / "windows.csv"
    windows.write_bytes("id,name\n1,Müller €uro\n".encode("cp1252"))
    # The upload's detected format agrees, so the export reaches the conversion.
    assert detect_format("windows.csv", windows.read_bytes()) == "csv"
    assert detect_format("utf16.csv", "a,b\n".encode("utf-16")) == "csv"  # refused below
    assert detect_format("x.csv", b"\x89\x00\x01\xfe") == "binary"
    target = tmp_path / "out.json"
    result = convert_file(windows, "csv", target, "json")
    assert json.loads(target.read_text(encoding="utf-8")) == {"id": 1, "name": "Müller €uro"}
    assert result.warnings == ["the file is not UTF-8: read as cp1252 text"]

    cut = "a,b\n" + "x," + "y" * (csv_source.SAMPLE_BYTES - 7) + "é\n"
    assert cut.encode()[csv_source.SAMPLE_BYTES - 1 : csv_source.SAMPLE_BYTES + 1] == "é".encode()
    target, result = run(tmp_path, cut, "parquet")
    assert pq.read_table(target).column("b").to_pylist()[0].endswith("yé")
    assert result.warnings == []

    for data, reason in (
        ("a,b\n1,2\n".encode("utf-16"), "UTF-16 text"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xab", "not a text file"),  # a gzip
    ):
        source = tmp_path / "refused.csv"
        source.write_bytes(data)
        with pytest.raises(ConversionError, match=reason):
            convert_file(source, "csv", tmp_path / "refused.parquet", "parquet")


@pytest.mark.parametrize(
    "options",
    [{}, {"use_dictionary": False}],
    ids=["polars-engine", "pyarrow-engine"],  # the second option is one polars lacks
)
def test_streaming_many_blocks_checks_rows_and_a_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 64 * 1024)
    rows = 300_000
    lines = ["gene,value,label"] + [
        f"g{i},{i * 0.5},{'NA' if i % 97 == 0 else 'l' + str(i)}" for i in range(rows)
    ]
    lines.append("late,1e400,x")  # an overflow to inf far past the first block
    source = tmp_path / "big.csv"
    source.write_text("\n".join(lines) + "\n")
    assert source.stat().st_size > 50 * 64 * 1024
    seen: list[int] = []
    target = tmp_path / "big.parquet"
    result = convert_file(source, "csv", target, "parquet", options, on_progress=seen.append)
    table = pq.read_table(target)
    assert result.rows == table.num_rows == rows + 1
    labels = table.column("label").to_pylist()
    digest = hashlib.sha256("|".join(str(v) for v in labels).encode()).hexdigest()
    expected_labels = [None if i % 97 == 0 else f"l{i}" for i in range(rows)] + ["x"]
    assert digest == hashlib.sha256("|".join(str(v) for v in expected_labels).encode()).hexdigest()
    assert table.column("value").to_pylist()[-1] == float("inf")
    assert len(seen) > 5 and seen == sorted(seen) and seen[-1] == source.stat().st_size
