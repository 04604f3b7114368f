"""The polars engine: the same values as the general path, an unclosed quote named,
and JSON Lines joined into one array."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_worker.conversion.tables import AGREE, read_back, run

from waybill_export_worker.conversion import (
    ConversionError,
    polars_engine,
)
from waybill_export_worker.conversion.readers import csv_source


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("csv", {}), ("json", {}), ("json", {"orient": "records"}), ("parquet", {})],
)
def test_polars_and_pyarrow_engines_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, options: dict[str, str]
) -> None:
    """The fast engine and the general one give the same values, NA, types after a
    late widening, formula escapes and non-finite handling included."""
    monkeypatch.setattr(csv_source, "DEFAULT_BLOCK", 4096)  # the late values are past the sample
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


def test_a_quoted_field_never_closed_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="a quoted field is never closed \\(column 'b'\\)"):
        run(tmp_path, 'a,b\n1,"x\n2,y\n', "parquet")


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
