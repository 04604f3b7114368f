"""HDF5 in Waybill's layout: read back by h5py and pandas, NUL refused, chunks."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
from export_worker.conversion.tables import TRICKY, run

from waybill_export_worker.conversion import (
    ConversionError,
    hdf5,
)
from waybill_export_worker.conversion.hdf5 import read_table
from waybill_export_worker.conversion.readers import csv_source


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
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 32 * 1024)
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
