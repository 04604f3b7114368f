"""Column selection and row filters: the JSON grammar (refused at job creation when
malformed), and what both engines keep: the polars CSV query and the general path's
per-batch filter give the same rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from waybill_export_worker.conversion import (
    ConversionError,
    ConversionResult,
    convert,
    output_filename,
)
from waybill_shared.export_options import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    AllOf,
    parse_export_options,
)

# gene,padj (NA markers, a NaN), count (ints, NA), id (leading zeros: text), ok (bool),
# note (text that looks like a formula).
GENES = (
    "id,gene,padj,count,ok,note\n"
    "001,BRCA1,0.01,12,true,=SUM(A1)\n"
    "002,TP53,0.2,7,false,plain\n"
    "003,NA,NA,,true,\n"
    "004,MYC,NaN,3,,x=1\n"
    "005,EGFR,0.049,40,false,tumour\n"
)


def convert_with(
    tmp_path: Path, fmt: str, options: dict[str, Any], text: str = GENES, encoding: str = "utf-8"
) -> tuple[list[dict[str, Any]], ConversionResult]:
    source = tmp_path / "genes.csv"
    source.write_bytes(text.encode(encoding))
    target = tmp_path / output_filename("out", fmt)
    result = convert(
        source=source,
        source_format="csv",
        target=target,
        target_format=fmt,
        options=parse_export_options(fmt, options),
    )
    table = pq.read_table(target) if fmt == "parquet" else orc.read_table(target)
    return table.to_pylist(), result


# parquet from a UTF-8 CSV takes the polars engine; ORC the general path.
ENGINES = ["parquet", "orc"]


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


@pytest.mark.parametrize("fmt", ENGINES)
@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"column": "padj", "op": "<", "value": 0.05}, ["001", "005"]),
        ({"column": "padj", "op": ">=", "value": 0.049}, ["002", "005"]),
        ({"column": "count", "op": "<=", "value": 7}, ["002", "004"]),
        ({"column": "count", "op": ">", "value": 6.5}, ["001", "002", "005"]),
        ({"column": "count", "op": "=", "value": 12}, ["001"]),
        # NA passes no comparison, != included: only is_null finds it.
        ({"column": "gene", "op": "!=", "value": "TP53"}, ["001", "004", "005"]),
        ({"column": "gene", "op": "is_null"}, ["003"]),
        ({"column": "padj", "op": "is_null"}, ["003", "004"]),  # NaN is NA
        ({"column": "padj", "op": "not_null"}, ["001", "002", "005"]),
        ({"column": "gene", "op": "in", "value": ["MYC", "EGFR", "nope"]}, ["004", "005"]),
        ({"column": "count", "op": "in", "value": [3, 7.0]}, ["002", "004"]),
        ({"column": "note", "op": "contains", "value": "="}, ["001", "004"]),  # before escaping
        ({"column": "ok", "op": "=", "value": True}, ["001", "003"]),
        ({"column": "id", "op": "=", "value": "002"}, ["002"]),  # text: leading zeros kept
        ({"column": "id", "op": ">", "value": "003"}, ["004", "005"]),  # text order
    ],
)
def test_each_operator_follows_the_column_type(
    tmp_path: Path, fmt: str, condition: dict[str, Any], expected: list[str]
) -> None:
    rows, result = convert_with(tmp_path, fmt, {"filter": [condition]})
    assert ids(rows) == expected
    assert result.rows_read == 5 and result.rows == len(expected)


@pytest.mark.parametrize("fmt", ENGINES)
def test_all_and_any_nest_and_columns_keep_their_order(tmp_path: Path, fmt: str) -> None:
    rows, result = convert_with(
        tmp_path,
        fmt,
        {
            "columns": ["padj", "id"],
            "filter": {
                "any": [
                    {
                        "all": [
                            {"column": "padj", "op": "<", "value": 0.05},
                            {"column": "ok", "op": "=", "value": False},
                        ]
                    },
                    {"column": "gene", "op": "is_null"},
                ]
            },
        },
    )
    assert rows == [{"padj": None, "id": "003"}, {"padj": 0.049, "id": "005"}]
    assert (result.rows_read, result.rows, result.columns) == (5, 2, 2)


@pytest.mark.parametrize("fmt", ENGINES)
def test_columns_alone_select_every_row(tmp_path: Path, fmt: str) -> None:
    rows, result = convert_with(tmp_path, fmt, {"columns": ["note", "count"]})
    assert [list(r) for r in rows] == [["note", "count"]] * 5
    assert [r["count"] for r in rows] == [12, 7, None, 3, 40]
    assert (result.rows_read, result.rows) == (5, 5)


@pytest.mark.parametrize("fmt", ENGINES)
def test_a_filter_that_passes_nothing_writes_an_empty_table(tmp_path: Path, fmt: str) -> None:
    rows, result = convert_with(
        tmp_path, fmt, {"filter": [{"column": "count", "op": ">", "value": 1e9}]}
    )
    assert rows == [] and (result.rows_read, result.rows) == (5, 0)


def test_the_general_path_reads_a_non_utf8_file_the_same_way(tmp_path: Path) -> None:
    """Windows-1252 takes pyarrow's reader, to parquet too: the same rows."""
    options = {"filter": [{"column": "gene", "op": "contains", "value": "é"}], "columns": ["id"]}
    text = GENES.replace("TP53", "TP5é")
    rows, _ = convert_with(tmp_path, "parquet", options, text=text, encoding="cp1252")
    assert rows == [{"id": "002"}]


@pytest.mark.parametrize("fmt", ENGINES)
def test_a_late_na_marker_and_a_widened_column_are_filtered_by_their_final_type(
    tmp_path: Path, fmt: str
) -> None:
    """A marker and a float first met past the type sample: the file is read again,
    the filter compiled against the wider type."""
    rows = [f"{i:03d},G{i},0.5,{i},true,n" for i in range(1, 30_001)]
    rows[-2] = "29999,null,0.5,2.5,true,n"
    text = "id,gene,padj,count,ok,note\n" + "\n".join(rows) + "\n"
    got, result = convert_with(
        tmp_path,
        fmt,
        {
            "filter": {
                "any": [
                    {"column": "count", "op": "<", "value": 3},
                    {"column": "gene", "op": "is_null"},
                ]
            }
        },
        text=text,
    )
    assert ids(got) == ["001", "002", "29999"]
    assert [r["count"] for r in got] == [1.0, 2.0, 2.5]
    assert result.rows_read == 30_000


@pytest.mark.parametrize("fmt", ENGINES)
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": ["id", "pvalue"]}, "no column 'pvalue' in this file"),
        ({"filter": [{"column": "nope", "op": "is_null"}]}, "no column 'nope'"),
        ({"filter": [{"column": "id", "op": "=", "value": 7}]}, "'id': the column holds text"),
        (
            {"filter": [{"column": "padj", "op": "<", "value": "0.05"}]},
            "'padj': the column holds numbers",
        ),
        ({"filter": [{"column": "count", "op": "contains", "value": "1"}]}, "holds numbers"),
        ({"filter": [{"column": "ok", "op": "=", "value": 1}]}, "holds booleans"),
        ({"filter": [{"column": "gene", "op": "in", "value": ["A", 2]}]}, "holds text"),
    ],
)
def test_unknown_columns_and_type_mismatches_fail_the_file(
    tmp_path: Path, fmt: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConversionError, match=message):
        convert_with(tmp_path, fmt, options)


def test_dates_compare_with_iso_text_from_a_parquet_input(tmp_path: Path) -> None:
    source = tmp_path / "days.parquet"
    pq.write_table(
        pa.table(
            {
                "day": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3)] + [None]),
                "at": pa.array([dt.datetime(2024, 1, 1, h, tzinfo=dt.UTC) for h in (1, 2, 3, 4)]),
                "n": pa.array([1, 2, 3, 4], pa.uint8()),
            }
        ),
        source,
    )

    def run(options: dict[str, Any]) -> list[dict[str, Any]]:
        target = tmp_path / "out.parquet"
        convert(
            source=source,
            source_format="parquet",
            target=target,
            target_format="parquet",
            options=parse_export_options("parquet", options),
        )
        return pq.read_table(target).to_pylist()

    assert [
        r["n"] for r in run({"filter": [{"column": "day", "op": ">=", "value": "2024-01-02"}]})
    ] == [2, 3]
    late = {"column": "at", "op": ">", "value": "2024-01-01T02:30:00Z"}
    assert [r["n"] for r in run({"filter": [late], "columns": ["n"]})] == [3, 4]
    in_list = {"column": "n", "op": "in", "value": [1, 4, 300]}
    assert [r["n"] for r in run({"filter": [in_list]})] == [1, 4]
    # A value past the column's own type (uint8) still compares as a number.
    below = {"column": "n", "op": "<", "value": 300}
    assert [r["n"] for r in run({"filter": [below]})] == [1, 2, 3, 4]
    with pytest.raises(ConversionError, match="'day': the column holds dates"):
        run({"filter": [{"column": "day", "op": "=", "value": "the second"}]})


# --- the grammar, refused at job creation (the gateway answers 422) ------------------


def test_a_bare_list_means_all_and_the_stored_form_parses_again() -> None:
    options = parse_export_options(
        "csv",
        {
            "filter": [
                {"column": "padj", "op": "<", "value": 0.05},
                {"any": [{"column": "g", "op": "is_null"}]},
            ]
        },
    )
    assert isinstance(options.filter, AllOf) and len(options.filter.all) == 2  # type: ignore[union-attr]
    stored = options.model_dump(mode="json")
    assert stored["filter"] == {
        "all": [
            {"column": "padj", "op": "<", "value": 0.05},
            {"any": [{"column": "g", "op": "is_null", "value": None}]},
        ]
    }
    assert parse_export_options("csv", stored) == options


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"column": "a", "op": "is_null"}
    for _ in range(depth):
        node = {"all": [node]}
    return node


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"filter": {"column": "a", "op": "like", "value": "x"}}, "filter.op: Input should be '='"),
        ({"filter": {"column": "a", "op": "<"}}, "'<' takes one value"),
        ({"filter": {"column": "a", "op": "is_null", "value": 1}}, "'is_null' takes no value"),
        ({"filter": {"column": "a", "op": "in", "value": []}}, "'in' takes a non-empty list"),
        ({"filter": {"column": "a", "op": "in", "value": 3}}, "'in' takes a non-empty list"),
        ({"filter": {"column": "a", "op": "contains", "value": 3}}, "'contains' takes a text"),
        ({"filter": {"column": "a", "op": ">", "value": True}}, "not booleans"),
        ({"filter": {"column": "a", "op": "=", "value": {"$gt": 1}}}, "filter.value"),
        ({"filter": {"column": "", "op": "is_null"}}, "filter.column"),
        ({"filter": {"all": []}}, "filter.all: List should have at least 1 item"),
        (
            {"filter": {"any": [{"column": "a", "op": "is_null", "code": "x"}]}},
            "filter.any.0.code: unknown key",
        ),
        ({"filter": "padj < 0.05"}, "filter: Input should be a valid dictionary"),
        ({"filter": [{"column": "a", "op": "is_null"}] * (MAX_FILTER_CONDITIONS + 1)}, "at most"),
        ({"filter": nested(MAX_FILTER_DEPTH + 1)}, "nested at most"),
        ({"columns": []}, "columns: List should have at least 1 item"),
        ({"columns": ["a", "b", "a"]}, "columns repeats 'a'"),
        ({"columns": "a"}, "columns: Input should be a valid list"),
    ],
)
def test_malformed_selections_and_filters_are_refused(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_export_options("parquet", options)
    assert message in str(refused.value)


def test_zip_takes_no_selection() -> None:
    with pytest.raises(ValueError, match="columns: unknown option for zip"):
        parse_export_options("zip", {"columns": ["a"]})


def test_selecting_and_filtering_never_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas (~45 MB, 0.3-1 s per worker process) the first time a
    Python value or an empty table is made: neither engine's selection, nor the new
    writers, may do that. In a fresh process, as in a worker."""
    script = f"""
import sys
from pathlib import Path
from waybill_export_worker.conversion import convert
from waybill_shared.export_options import parse_export_options
options = {{"columns": ["id", "padj"], "filter": {{"any": [
    {{"column": "padj", "op": "<", "value": 0.05}}, {{"column": "gene", "op": "in", "value": ["MYC"]}}]}}}}
for encoding in ("utf-8", "cp1252"):  # the polars engine, then the general path
    source = Path({str(tmp_path)!r}) / "genes.csv"
    source.write_bytes({GENES!r}.replace("TP53", "TP5é").encode(encoding))
    for fmt in ("parquet", "arrow", "orc", "avro", "netcdf", "csv"):
        target = source.with_name("out." + fmt)
        convert(source=source, source_format="csv", target=target, target_format=fmt,
                options=parse_export_options(fmt, options))
        assert "pandas" not in sys.modules, (fmt, encoding)
print("clean")
"""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "clean", done.stderr
