"""The writer registry: one writer class per output format, opened alike, wrapped in
`Portable` only when the schema holds types the format lacks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from waybill_export_worker.conversion import TABULAR_OUTPUTS, ConversionError, output_filename
from waybill_export_worker.conversion.writers import WRITERS, open_sink
from waybill_export_worker.conversion.writers.excel import ExcelSink
from waybill_export_worker.conversion.writers.portable import Portable
from waybill_shared.export_options import options_model, parse_export_options

FLAT = pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64())])
NESTED = pa.schema([("id", pa.int64()), ("tags", pa.list_(pa.string()))])


def test_every_output_format_has_a_writer_and_options() -> None:
    assert tuple(WRITERS) == TABULAR_OUTPUTS
    assert set(WRITERS) == {
        "csv",
        "tsv",
        "json",
        "excel",
        "parquet",
        "hdf5",
        "arrow",
        "orc",
        "avro",
        "netcdf",
    }
    assert all(options_model(fmt) is not None for fmt in WRITERS)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_each_writer_opens_writes_and_closes_alike(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / output_filename("out", fmt)
    warnings: list[str] = []
    sink = open_sink(target, fmt, FLAT, parse_export_options(fmt, None), warnings)
    assert isinstance(sink, WRITERS[fmt])  # flat columns: no conversion on the way
    assert 0 < sink.rows_per_write <= 32_768
    sink.write(pa.record_batch([[1, 2], ["a", None], [0.5, 1.5]], schema=FLAT))
    sink.close()
    assert target.stat().st_size > 0 and warnings == []


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    options = parse_export_options("csv", None)
    with pytest.raises(ConversionError, match="unknown output format 'xls'"):
        open_sink(tmp_path / "out.xls", "xls", FLAT, options, [])


@pytest.mark.parametrize(("fmt", "wrapped"), [("csv", True), ("parquet", False), ("arrow", False)])
def test_types_a_format_lacks_are_converted_on_the_way(
    tmp_path: Path, fmt: str, wrapped: bool
) -> None:
    target = tmp_path / output_filename("out", fmt)
    sink = open_sink(target, fmt, NESTED, parse_export_options(fmt, None), [])
    try:
        assert isinstance(sink, Portable) == wrapped
    finally:
        sink.close()


def test_portable_keeps_the_rows_per_write_of_the_sink_it_wraps(tmp_path: Path) -> None:
    wide = pa.schema([(f"c{i}", pa.list_(pa.int64())) for i in range(64)])
    sink = open_sink(tmp_path / "out.xlsx", "excel", wide, parse_export_options("excel", None), [])
    try:
        assert isinstance(sink, Portable) and isinstance(sink.sink, ExcelSink)
        assert sink.rows_per_write == sink.sink.rows_per_write == 32_768 // 64
    finally:
        sink.close()


def test_the_plan_names_only_the_columns_that_change() -> None:
    schema, conversions = Portable.plan(NESTED, "csv")
    assert list(conversions) == [1] and schema.types == [pa.int64(), pa.string()]
    assert Portable.plan(NESTED, "parquet") == (NESTED, {})
