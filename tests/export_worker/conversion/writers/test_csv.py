"""CSV and TSV outputs: formula escapes and options."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from export_worker.conversion.tables import TRICKY, run


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
