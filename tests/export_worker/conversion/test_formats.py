"""The formats beyond the seed's: arrow (IPC file / Feather v2), orc, avro, netcdf.
Each is read back by its standard reader (pyarrow, fastavro, netCDF4): values, NA and
types as in the source; their options; and each read again as an input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import netCDF4
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from support.conversion import convert_file
from waybill_export_worker.conversion import (
    ConversionError,
    output_filename,
)
from waybill_export_worker.conversion.avro import avro_names
from waybill_export_worker.conversion.netcdf import INT_FILL, netcdf_names
from waybill_shared.export_options import parse_export_options
from waybill_shared.formats import detect_format

NEW = ["arrow", "orc", "avro", "netcdf"]
TRICKY = (
    "id,name,score,count,flag,note\n"
    '007,"Müller, Jörg",2.27e-15,1,true,"line one\nline two"\n'
    '010,"say ""hi""",,2,false,=SUM(A1:A2)\n'
    "011,NA,-3.5,,,tab\there\n"
)
EXPECTED = [
    {
        "id": "007",
        "name": "Müller, Jörg",
        "score": 2.27e-15,
        "count": 1,
        "flag": True,
        "note": "line one\nline two",
    },
    {
        "id": "010",
        "name": 'say "hi"',
        "score": None,
        "count": 2,
        "flag": False,
        "note": "=SUM(A1:A2)",
    },
    {"id": "011", "name": None, "score": -3.5, "count": None, "flag": None, "note": "tab\there"},
]


def read_back(path: Path, fmt: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows and each column's type, by the format's standard reader."""
    if fmt == "arrow":
        table = ipc.open_file(path).read_all()
        return table.to_pylist(), {f.name: str(f.type) for f in table.schema}
    if fmt == "orc":
        table = orc.read_table(path)
        return table.to_pylist(), {f.name: str(f.type) for f in table.schema}
    if fmt == "avro":
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            types = {
                field["name"]: json.dumps(next(t for t in field["type"] if t != "null"))
                for field in reader.writer_schema["fields"]  # type: ignore[index]
            }
            return list(reader), types  # type: ignore[arg-type]
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(True)
        columns: dict[str, list[Any]] = {}
        types = {}
        for name, variable in ds.variables.items():
            values = variable[:]
            types[name] = str(variable.dtype)
            if variable.dtype is str:
                fill = variable.getncattr("_FillValue")
                columns[name] = [None if v == fill else v for v in values]
            else:
                masked = np.ma.getmaskarray(values)
                flags = "flag_meanings" in variable.ncattrs()
                columns[name] = [
                    None if m else bool(v) if flags else v.item()
                    for v, m in zip(values.data, masked, strict=True)
                ]
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
        return rows, types


NATIVE_TYPES = {
    # Text is large_string from polars, string from pyarrow: UTF-8 either way (as Parquet).
    "arrow": {"id": "string", "score": "double", "count": "int64", "flag": "bool"},
    "orc": {"id": "string", "score": "double", "count": "int64", "flag": "bool"},
    "avro": {"id": '"string"', "score": '"double"', "count": '"long"', "flag": '"boolean"'},
    "netcdf": {"id": "<class 'str'>", "score": "float64", "count": "int64", "flag": "int8"},
}


@pytest.mark.parametrize("fmt", NEW)
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"], ids=["polars-engine", "general-path"])
def test_csv_reads_back_with_values_na_and_types(tmp_path: Path, fmt: str, encoding: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(TRICKY.encode(encoding))
    target = tmp_path / output_filename("out", fmt)
    result = convert_file(source, "csv", target, fmt)
    rows, types = read_back(target, fmt)
    assert rows == EXPECTED
    types = {k: t.replace("large_string", "string") for k, t in types.items()}
    assert {k: types[k] for k in NATIVE_TYPES[fmt]} == NATIVE_TYPES[fmt]
    assert (result.rows, result.rows_read, result.columns) == (3, 3, 6)


def typed_table() -> pa.Table:
    return pa.table(
        {
            "i32": pa.array([1, None, -3], pa.int32()),
            "u8": pa.array([1, None, 255], pa.uint8()),
            "u64": pa.array([1, None, 2**63 - 1], pa.uint64()),
            "f32": pa.array([1.5, None, -0.25], pa.float32()),
            "day": pa.array([dt.date(2024, 1, 31), None, dt.date(1969, 12, 31)]),
            "at": pa.array(
                [
                    dt.datetime(2024, 1, 31, 12, 30, 15, 250, tzinfo=dt.UTC),
                    None,
                    dt.datetime(1960, 1, 1, tzinfo=dt.UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": pa.array([Decimal("12.50"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
            "raw": pa.array([b"\x00\xff", None, b""]),
            "tags": pa.array([["a", "b"], None, []]),
            "kind": pa.array(["x", None, "y"]).dictionary_encode(),
            "took": pa.array([1_500_000, None, 0], pa.duration("us")),
        }
    )


def test_arrow_keeps_every_type(tmp_path: Path) -> None:
    source = tmp_path / "typed.parquet"
    pq.write_table(typed_table(), source)
    target = tmp_path / "out.arrow"
    convert_file(source, "parquet", target, "arrow")
    assert ipc.open_file(target).read_all().equals(pq.read_table(source))


def test_orc_keeps_what_orc_holds(tmp_path: Path) -> None:
    source = tmp_path / "typed.parquet"
    pq.write_table(typed_table(), source)
    target = tmp_path / "out.orc"
    convert_file(source, "parquet", target, "orc")
    table = orc.read_table(target)
    types = {f.name: str(f.type) for f in table.schema}
    # ORC has no unsigned integers (widened; uint64 within int64), no dictionaries and no
    # durations (seconds); its timestamps are nanoseconds.
    assert types == {
        "i32": "int32",
        "u8": "int16",
        "u64": "int64",
        "f32": "float",
        "day": "date32[day]",
        "at": "timestamp[ns, tz=UTC]",
        "amount": "decimal128(10, 2)",
        "raw": "binary",
        "tags": "list<item: string>",
        "kind": "string",
        "took": "double",
    }
    source_rows = pq.read_table(source).to_pylist()
    for got, want in zip(table.to_pylist(), source_rows, strict=True):
        assert (
            got["u64"] == want["u64"]
            and got["amount"] == want["amount"]
            and got["raw"] == want["raw"]
        )
        assert (
            got["tags"] == want["tags"]
            and got["kind"] == want["kind"]
            and got["day"] == want["day"]
        )
        assert (got["at"] is None) == (want["at"] is None)
    assert [r["took"] for r in table.to_pylist()] == [1.5, None, 0.0]


def test_avro_types_from_a_typed_input(tmp_path: Path) -> None:
    source = tmp_path / "typed.parquet"
    pq.write_table(typed_table(), source)
    target = tmp_path / "out.avro"
    convert_file(source, "parquet", target, "avro")
    rows, types = read_back(target, "avro")
    assert types == {
        "i32": '"int"',
        "u8": '"int"',
        "u64": '"long"',
        "f32": '"float"',
        "day": '{"logicalType": "date", "type": "int"}',
        "at": '{"logicalType": "timestamp-micros", "type": "long"}',
        "amount": '{"logicalType": "decimal", "precision": 10, "scale": 2, "type": "bytes"}',
        "raw": '"bytes"',
        "tags": '"string"',  # nested values as their JSON text, as in CSV
        "kind": '"string"',
        "took": '"double"',
    }
    want = pq.read_table(source).to_pylist()
    assert [r["at"] for r in rows] == [w["at"] for w in want]  # the instant, in UTC
    assert [r["amount"] for r in rows] == [Decimal("12.50"), None, Decimal("-0.01")]
    assert [r["u64"] for r in rows] == [1, None, 2**63 - 1]
    assert [r["tags"] for r in rows] == ['["a", "b"]', None, "[]"]
    assert [r["raw"] for r in rows] == [b"\x00\xff", None, b""]


def test_avro_names_are_made_valid_and_the_original_kept(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("gene id,1st,p-value,p_value\nA,1,0.5,0.25\n")
    target = tmp_path / "out.avro"
    result = convert_file(source, "csv", target, "avro")
    with target.open("rb") as f:
        reader = fastavro.reader(f)
        fields = reader.writer_schema["fields"]  # type: ignore[index]
        assert list(reader) == [{"gene_id": "A", "_1st": 1, "p_value_2": 0.5, "p_value": 0.25}]
    assert [(f["name"], f.get("doc")) for f in fields] == [
        ("gene_id", "gene id"),
        ("_1st", "1st"),
        ("p_value_2", "p-value"),
        ("p_value", None),
    ]
    assert "columns renamed to Avro names" in result.warnings[0]
    assert avro_names(["a", "a b", "a_b"]) == ["a", "a_b_2", "a_b"]  # valid names kept


def test_avro_refuses_timestamps_finer_than_a_microsecond(tmp_path: Path) -> None:
    source = tmp_path / "ns.parquet"
    pq.write_table(pa.table({"t": pa.array([1_000, 1_001], pa.timestamp("ns"))}), source)
    with pytest.raises(ConversionError, match="'t' holds timestamps finer than a microsecond"):
        convert_file(source, "parquet", tmp_path / "out.avro", "avro")


def test_netcdf_layout(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("row,a/b,flag\n1,0.5,true\n2,,false\n")
    target = tmp_path / "out.nc"
    convert_file(source, "csv", target, "netcdf")
    with netCDF4.Dataset(target) as ds:
        assert list(ds.dimensions) == ["row_"] and ds.dimensions["row_"].size == 2
        assert list(ds.variables) == ["row", "a_b", "flag"]
        assert json.loads(ds.getncattr("columns")) == ["row", "a/b", "flag"]
        assert ds["a_b"].getncattr("column") == "a/b"
        assert ds["a_b"].filters()["zlib"] is True
        assert ds["flag"].getncattr("flag_meanings") == "false true"
        assert ds["row"].getncattr("_FillValue") == INT_FILL
    assert netcdf_names(["ok", "a/b", " x", "tail "]) == ["ok", "a_b", "_ x", "tail_"]


def test_netcdf_refuses_its_own_na_mark_as_a_value(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"n\n1\n{INT_FILL}\n")
    with pytest.raises(ConversionError, match="netCDF's mark for NA"):
        convert_file(source, "csv", tmp_path / "out.nc", "netcdf")


@pytest.mark.parametrize(
    ("fmt", "options", "check"),
    [
        ("arrow", {"compression": "zstd"}, lambda p: ipc.open_file(p).read_all().num_rows == 2000),
        ("arrow", {"compression": "none"}, lambda p: ipc.open_file(p).read_all().num_rows == 2000),
        ("orc", {"compression": "snappy"}, lambda p: orc.ORCFile(p).compression == "SNAPPY"),
        (
            "orc",
            {"compression": "none", "stripe_size": 1048576},
            lambda p: orc.ORCFile(p).compression == "UNCOMPRESSED",
        ),
        ("avro", {"codec": "deflate"}, lambda p: fastavro.reader(p.open("rb")).codec == "deflate"),
        ("avro", {"codec": "snappy"}, lambda p: len(list(fastavro.reader(p.open("rb")))) == 2000),
        (
            "netcdf",
            {"compression": "none"},
            lambda p: netCDF4.Dataset(p)["n"].filters()["zlib"] is False,
        ),
    ],
)
def test_format_options(tmp_path: Path, fmt: str, options: dict[str, Any], check: Any) -> None:
    source = tmp_path / "in.csv"
    source.write_text("n,s\n" + "".join(f"{i},v{i % 7}\n" for i in range(2000)))
    target = tmp_path / output_filename("out", fmt)
    convert_file(source, "csv", target, fmt, options)
    assert check(target)


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        ("arrow", {"compression": "brotli"}, "compression: Input should be"),
        ("orc", {"stripe_size": 10}, "stripe_size"),
        ("avro", {"compression": "deflate"}, "compression: unknown option for avro"),
        ("netcdf", {"compression": "gzip"}, "compression: Input should be 'zlib' or 'none'"),
        ("netcdf", {"zlib": True}, "zlib: unknown option for netcdf"),
    ],
)
def test_unknown_or_bad_format_options_are_refused(
    fmt: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_export_options(fmt, options)
    assert message in str(refused.value)


@pytest.mark.parametrize("fmt", NEW)
def test_each_reads_again_as_an_input(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(TRICKY)
    middle = tmp_path / output_filename("middle", fmt)
    convert_file(source, "csv", middle, fmt)
    assert detect_format(middle.name, middle.read_bytes()[:4096]) == fmt
    target = tmp_path / "back.parquet"
    result = convert_file(
        middle, fmt, target, "parquet", {"filter": [{"column": "count", "op": "not_null"}]}
    )
    rows = pq.read_table(target).to_pylist()
    assert rows == [r for r in EXPECTED if r["count"] is not None]
    assert (result.rows_read, result.rows) == (3, 2)


@pytest.mark.parametrize("fmt", NEW)
def test_an_unreadable_input_fails_the_file(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / output_filename("broken", fmt)
    source.write_bytes(
        {
            "arrow": b"ARROW1\x00\x00",
            "orc": b"ORC\x00",
            "avro": b"Obj\x01",
            "netcdf": b"\x89HDF\r\n\x1a\n",
        }[fmt]
    )
    with pytest.raises(ConversionError, match="not a readable"):
        convert_file(source, fmt, tmp_path / "out.csv", "csv")


def test_a_netcdf_grid_is_not_a_table(tmp_path: Path) -> None:
    source = tmp_path / "grid.nc"
    with netCDF4.Dataset(source, "w") as ds:
        ds.createDimension("x", 2)
        ds.createDimension("y", 2)
        ds.createVariable("t", "f8", ("x", "y"))[:] = [[1, 2], [3, 4]]
    with pytest.raises(ConversionError, match="not a table"):
        convert_file(source, "netcdf", tmp_path / "out.csv", "csv")


def test_the_arrow_ipc_stream_format_reads_too(tmp_path: Path) -> None:
    source = tmp_path / "in.arrows"
    table = pa.table({"n": pa.array([1, None, 3]), "s": pa.array(["a", "b", None])})
    with pa.ipc.new_stream(str(source), table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    assert detect_format(source.name, source.read_bytes()[:4096]) == "arrow"
    target = tmp_path / "out.parquet"
    convert_file(source, "arrow", target, "parquet")
    assert pq.read_table(target).to_pylist() == table.to_pylist()
