"""Streaming conversion, pure: round trips through every output format, type
survival, the traps, and the streaming path."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import h5py
import openpyxl
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionCancelled,
    ConversionError,
    ConversionResult,
    detect_format,
    hdf5,
    output_filename,
    polars_engine,
    readers,
    writers,
)
from waybill_export_worker.conversion.hdf5 import read_table
from waybill_shared.export_options import parse_export_options

TRICKY = (
    "id,name,score,count,note\n"
    '007,"Müller, Jörg",2.27e-15,1,"line one\nline two"\n'
    '010,"say ""hi""",,2,=SUM(A1:A2)\n'
    '011,NA,-3.5,,"tab\there"\n'
)


def run(
    tmp_path: Path,
    text: str,
    fmt: str,
    options: dict | None = None,
    source_format: str = "csv",
    name: str = "in.csv",
) -> tuple[Path, ConversionResult]:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    target = tmp_path / output_filename("out", fmt)
    result = convert_file(source, source_format, target, fmt, options)
    return target, result


def expected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["007", "010", "011"],
            "name": ["Müller, Jörg", 'say "hi"', None],
            "score": [2.27e-15, None, -3.5],
            "count": [1, 2, None],
            "note": ["line one\nline two", "=SUM(A1:A2)", "tab\there"],
        }
    )


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


def test_csv_round_trip_with_formula_escape(tmp_path: Path) -> None:
    target, _ = run(tmp_path, TRICKY, "csv")
    df = pd.read_csv(target, dtype={"id": str})
    assert list(df["id"]) == ["007", "010", "011"]
    assert df["note"][1] == "'=SUM(A1:A2)"  # neutralised for spreadsheets
    assert df["name"][1] == 'say "hi"' and df["note"][0] == "line one\nline two"
    off, _ = run(tmp_path, TRICKY, "csv", {"formula_escape": False})
    assert pd.read_csv(off)["note"][1] == "=SUM(A1:A2)"


@pytest.mark.parametrize(
    "options", [{}, {"encoding": "latin-1"}], ids=["polars-engine", "general-path"]
)
def test_csv_formula_escape_keeps_numbers_and_na(tmp_path: Path, options: dict) -> None:
    text = 'id,note\n1,=SUM(A1)\n2,-5\n3,+x\n4,NA\n5,@me\n6,plain\n7,"\ttab"\n8,-1e-3\n'
    target, _ = run(tmp_path, text, "csv", options)
    df = pd.read_csv(target, dtype=str, keep_default_na=False, encoding="latin-1")
    assert list(df["note"]) == ["'=SUM(A1)", "-5", "'+x", "", "'@me", "plain", "'\ttab", "-1e-3"]


def test_tsv_and_csv_options(tmp_path: Path) -> None:
    target, _ = run(tmp_path, "a,b\n1,x\n", "tsv")
    assert (
        target.read_text() == '"a"\t"b"\n1\t"x"\n'
        or target.read_text().splitlines()[1].split("\t")[0] == "1"
    )
    custom, _ = run(
        tmp_path,
        'a,b\n1,"x;y"\n',
        "csv",
        {"delimiter": ";", "quote_char": "'", "include_header": False, "encoding": "latin-1"},
    )
    assert custom.read_bytes() == b"1;'x;y'\n"


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


def test_excel_round_trip_text_never_formula(tmp_path: Path) -> None:
    target, _ = run(tmp_path, TRICKY, "excel", {"sheet_name": "Genes", "freeze_panes": [1, 0]})
    book = openpyxl.load_workbook(target)
    sheet = book["Genes"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("id", "name", "score", "count", "note")
    assert rows[1][0] == "007" and rows[1][3] == 1 and rows[2][3] == 2
    assert (
        rows[2][4] == "=SUM(A1:A2)" and sheet.cell(3, 5).data_type == "s"
    )  # a string, not a formula


@pytest.mark.parametrize("escape", [True, False])
def test_excel_cells_keep_their_kind(tmp_path: Path, escape: bool) -> None:
    """Empty text stays an empty text cell (not a missing one), NA is no cell, NaN and
    infinity are text, and risky text carries the quote prefix only when escaping."""
    source = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "text": ["", "=1+1", None, "ok", "-x"],
                "number": [1.5, float("nan"), None, 2.0, float("inf")],
                "flag": [True, None, False, True, False],
            }
        ),
        source,
    )
    target = tmp_path / "out.xlsx"
    convert_file(
        source, "parquet", target, "excel", {"formula_escape": escape, "include_index": True}
    )
    sheet = openpyxl.load_workbook(target).active
    cells = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows(min_row=2)]
    assert cells == [
        [(0, "n"), ("", "s"), (1.5, "n"), (True, "b")],
        [(1, "n"), ("=1+1", "s"), ("nan", "s"), (None, "n")],
        [(2, "n"), (None, "n"), (None, "n"), (False, "b")],
        [(3, "n"), ("ok", "s"), (2, "n"), (True, "b")],
        [(4, "n"), ("-x", "s"), ("inf", "s"), (False, "b")],
    ]
    prefixed = [c.value for row in sheet.iter_rows(min_row=2) for c in row if c.quotePrefix]
    assert prefixed == (["=1+1", "-x"] if escape else [])


def test_hdf5_layout_reads_back_with_h5py_and_pandas(tmp_path: Path) -> None:
    target, _ = run(tmp_path, TRICKY, "hdf5")
    with h5py.File(target) as f:
        assert json.loads(f["table"].attrs["columns"]) == ["id", "name", "score", "count", "note"]
        assert f["table/0"].attrs["name"] == "id"
        assert list(f["table/3_na"][:]) == [False, False, True]
    df = read_table(target)
    assert list(df["id"]) == ["007", "010", "011"]
    assert df["count"].isna().tolist() == [False, False, True]


def test_hdf5_refuses_a_nul_inside_text_by_column(tmp_path: Path) -> None:
    """HDF5 strings are NUL-terminated: a NUL inside a value would cut it short, so
    the file fails with the column named instead of losing the rest of the value."""
    with pytest.raises(ConversionError, match="'name' holds a NUL"):
        run(tmp_path, "id,name\n1,ab\n2,a\x00b\n", "hdf5")
    target, _ = run(tmp_path, "id,name\n1,ab\n2,\n", "hdf5")  # "" and NA are fine
    assert read_table(target)["name"].isna().tolist() == [False, True]


@pytest.mark.parametrize("compression", ["gzip", "none", "lzf"])
def test_hdf5_many_chunks_late_nulls_and_a_wide_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """The sink writes whole chunks and carries the rest over: values, the order of
    rows and a mask that starts late (a column's first NA in its third chunk) survive,
    with chunks gzip'd by us (ISA-L, written directly), stored raw, or lzf'd by h5py;
    the last chunk is a part one."""
    monkeypatch.setattr(hdf5, "BUFFER_BYTES", 64 * 1024)
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 32 * 1024)
    rows = 10_000
    lines = ["id,value,label"] + [
        f"r{i},{i}.25,{'NA' if i > 2500 and i % 7 == 0 else f'l{i}'}" for i in range(rows)
    ]
    options = {"compression": compression}
    target, result = run(tmp_path, "\n".join(lines) + "\n", "hdf5", options)
    assert result.rows == rows
    with h5py.File(target) as f:
        chunk = f["table/0"].chunks[0]
        assert chunk == hdf5.chunk_rows(["string", "float64", "string"]) and rows > 3 * chunk
        assert rows % chunk != 0
        assert f["table/1"].compression == (None if compression == "none" else compression)
        assert f["table/1"][:].tolist() == [i + 0.25 for i in range(rows)]  # h5py alone
        assert "1_na" not in f["table"] and f["table/2_na"].shape == (rows,)
    df = read_table(target)
    assert df["id"].tolist() == [f"r{i}" for i in range(rows)]
    assert df["value"].tolist() == [i + 0.25 for i in range(rows)]
    assert df["label"].isna().tolist() == [i > 2500 and i % 7 == 0 for i in range(rows)]

    width = 300  # 300 columns: chunks of fewer rows, still whole
    header = "gene," + ",".join(f"s{j}" for j in range(width))
    body = [f"g{i}," + ",".join(str(i * j) for j in range(width)) for i in range(3000)]
    target, _ = run(tmp_path, "\n".join([header, *body]) + "\n", "hdf5", options, name="wide.csv")
    with h5py.File(target) as f:
        assert f["table/0"].chunks[0] == hdf5.MIN_CHUNK_ROWS
    df = read_table(target)
    assert df.shape == (3000, width + 1) and df["s299"].tolist() == [i * 299 for i in range(3000)]


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


@pytest.mark.parametrize(
    "options",
    [{}, {"use_dictionary": False}],
    ids=["polars-engine", "pyarrow-engine"],  # the second option is one polars lacks
)
def test_streaming_many_blocks_checks_rows_and_a_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 64 * 1024)
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


def test_an_excel_input_whose_types_change_in_a_later_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Types come from the first chunk of rows; a later chunk's float, text or first
    value widens its column and the file is read again: nothing is cast unsafely
    (a late 1.5 in an int column was written as 1)."""
    monkeypatch.setattr(readers, "EXCEL_CHUNK_ROWS", 10)
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

    cut = "a,b\n" + "x," + "y" * (readers.SAMPLE_BYTES - 7) + "é\n"
    assert cut.encode()[readers.SAMPLE_BYTES - 1 : readers.SAMPLE_BYTES + 1] == "é".encode()
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


def test_a_quoted_field_never_closed_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="a quoted field is never closed \\(column 'b'\\)"):
        run(tmp_path, 'a,b\n1,"x\n2,y\n', "parquet")


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


AGREE = (
    "id,flag,name,score,count,big,note\n"
    '007,True,"Müller, Jörg",2.27e-15,1,5,"line one\nline two"\n'
    '010,false,"NA",,2,6,=SUM(A1:A2)\n'
    "011,TRUE,N/A,inf,,7,@cmd\n"
    + "".join(f"{100 + i},false,g{i},{i}.25,{i},{i},-{i}\n" for i in range(3000))
    + "012,true,late,1.5e300,3.5,99999999999999999999,+1\n"
    # NA markers the sample never saw, in text, float, int and boolean columns
    + "013,None,null,nan,NULL,#N/A,None\n"
)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("csv", {}), ("json", {}), ("json", {"orient": "records"}), ("parquet", {})],
)
def test_polars_and_pyarrow_engines_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, options: dict[str, str]
) -> None:
    """The fast engine and the general one give the same values, NA, types after a
    late widening, formula escapes and non-finite handling included."""
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 4096)  # the late values are past the sample
    fast, _ = run(tmp_path, AGREE, fmt, options)
    fast_rows = read_back(fast, fmt)
    monkeypatch.setattr(polars_engine, "supports", lambda *_: False)
    general_dir = tmp_path / "general"
    general_dir.mkdir()
    general, _ = run(general_dir, AGREE, fmt, options)
    assert fast_rows == read_back(general, fmt)
    if options.get("orient") == "records":  # one JSON array, laid out the same
        assert fast.read_text()[:3] == general.read_text()[:3] == "[\n{"
        assert fast.read_text().endswith("}\n]\n")
    if fmt == "csv":  # no types in CSV: the digits themselves, not 1e+20
        assert ",99999999999999999999," in fast.read_text()
    else:
        assert fast_rows[-2]["big"] == "99999999999999999999" and fast_rows[-2]["count"] == 3.5
    assert fast_rows[1]["name"] is None  # "NA" is null, quoted or not
    late = fast_rows[-1]
    assert [late[k] for k in ("flag", "name", "score", "count", "big", "note")] == [None] * 6


def test_hdf5_and_excel_widen_and_learn_markers_as_the_sinks_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The general path (pyarrow's reader, our writers) restarts like polars' sinks
    when a value past the sample needs a wider column (3.5 in an int column, an int64
    overflow) or is an NA marker the sample never saw: the same rows, the same types."""
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 4096)  # the late values are past the sample
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
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 4096)  # a 4 KiB sample: ~40 rows
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

    csv_source = readers.CsvSource(source, delimiter=",", on_read=None, should_stop=should_stop)
    with pytest.raises(ConversionCancelled):
        csv_source.settle_types()
    assert calls == [1]


def read_back(path: Path, fmt: str) -> list[dict[str, object]]:
    if fmt == "hdf5":
        return pa.Table.from_batches(list(readers.hdf5_batches(path, None))).to_pylist()
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "json" and path.read_text().startswith("["):
        rows: list[dict[str, object]] = json.loads(path.read_text())
        return rows
    if fmt == "json":
        return [json.loads(line) for line in path.read_text().splitlines()]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [{k: csv_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def csv_value(text: str) -> object:
    """A CSV cell as a value: "1" and "1.0" are the same float, "" is NA."""
    if text == "":
        return None
    try:
        return text if re.match(r"^0[0-9]+$", text) else float(text)  # "007" is an id
    except ValueError:
        return text


def test_excel_continues_on_new_sheets_past_the_row_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real limit is 1,048,575 data rows; a small one shows the same split, also
    in the middle of a batch: every row once, in order, the header on every sheet."""
    monkeypatch.setattr(writers, "EXCEL_MAX_ROWS", 4)
    text = "n,label\n" + "".join(f"{i},=x{i}\n" for i in range(10))
    target, result = run(tmp_path, text, "excel", {"sheet_name": "Data"})
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["Data", "Data_2", "Data_3"]
    rows = []
    for sheet in book.worksheets:
        values = list(sheet.iter_rows(values_only=True))
        assert values[0] == ("n", "label")
        rows += values[1:]
    assert rows == [(i, f"=x{i}") for i in range(10)]
    assert all(cell.data_type == "s" for cell in book["Data_3"]["B"][1:])  # text, not formulas
    assert result.warnings == ["10 rows continue over 3 sheets"]


def test_excel_workbook_deflated_in_pieces_reads_back(tmp_path: Path) -> None:
    """The workbook is packed by our ZipFile (ISA-L, 1 MiB pieces): a sheet of several
    MiB of XML is deflated, its CRC checks out, and every value reads back."""
    text = "id,name,value\n" + "".join(f"{i},gene {i % 97},{i / 7!r}\n" for i in range(60_000))
    target, _ = run(tmp_path, text, "excel")
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        assert sheet.compress_type == zipfile.ZIP_DEFLATED
        assert sheet.file_size > 3 * 1024 * 1024 and sheet.compress_size < sheet.file_size / 4
    rows = list(openpyxl.load_workbook(target, read_only=True).active.iter_rows(values_only=True))
    assert len(rows) == 60_001
    # Excel keeps 15-16 significant digits: xlsxwriter writes numbers with %.16G.
    assert rows[12_345] == (12_344, f"gene {12_344 % 97}", pytest.approx(12_344 / 7, rel=1e-15))


def test_excel_refuses_more_columns_than_a_sheet_holds(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(16_385))
    with pytest.raises(ConversionError, match="at most 16384"):
        run(tmp_path, header + "\n" + ",".join("1" for _ in range(16_385)) + "\n", "excel")


def test_sample_cut_inside_a_quoted_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The type sample is the first block cut at its last newline; when that newline
    is inside a quoted field, the partial row is not taken for a row: values and
    types come out right."""
    monkeypatch.setattr(readers, "DEFAULT_BLOCK", 4096)
    lines = ["n,text"] + [f"{i},plain {i}" for i in range(300)]
    body = "\n".join(lines) + "\n"
    quoted = '300,"' + "\n".join(f"part {j}" for j in range(100)) + '"\n'
    assert len(body) < 4096 < len(body) + len(quoted)  # the block ends inside the quotes
    target, result = run(tmp_path, body + quoted + "301,after\n", "parquet")
    table = pq.read_table(target)
    assert result.rows == 302 and table.column("n").type == "int64"
    assert table.column("text").to_pylist()[300].count("\n") == 99
    assert table.column("text").to_pylist()[301] == "after"


def test_json_array_file_joins_records_wherever_the_chunks_are_cut(tmp_path: Path) -> None:
    records = [{"a": 1, "s": "x\ny"}, {"a": None, "s": "]"}, {"a": 3, "s": ""}]
    lines = [json.dumps(r) for r in records]
    ndjson = ("\n".join(lines) + "\n").encode()
    expected = ("[\n" + ",\n".join(lines) + "\n]\n").encode()
    for first in range(len(ndjson) + 1):
        for second in range(first, len(ndjson) + 1, 7):
            target = tmp_path / "array.json"
            with polars_engine.JsonArrayFile(target) as array:
                for chunk in (ndjson[:first], ndjson[first:second], ndjson[second:]):
                    array.write(chunk)
            assert target.read_bytes() == expected, (first, second)
    with polars_engine.JsonArrayFile(target):
        pass
    assert json.loads(target.read_bytes()) == []
