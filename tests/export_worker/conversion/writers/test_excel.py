"""Excel outputs: text never a formula, cells of the right kind, sheets past the row
limit, the workbook's deflate, and too many columns refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_worker.conversion.tables import TRICKY, run

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionError,
)
from waybill_export_worker.conversion.writers import excel as excel_writer


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


def test_excel_continues_on_new_sheets_past_the_row_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real limit is 1,048,575 data rows; a small one shows the same split, also
    in the middle of a batch: every row once, in order, the header on every sheet."""
    monkeypatch.setattr(excel_writer, "EXCEL_MAX_ROWS", 4)
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
