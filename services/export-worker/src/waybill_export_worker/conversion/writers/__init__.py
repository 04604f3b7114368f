"""Sinks: record batches written to one output format, streaming. One module a format
(HDF5, Avro and netCDF live in their format modules beside this package, with their
readers); `WRITERS` maps each output format to its writer class, and `open_sink`
opens one behind `Portable` when the schema holds types the format lacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from waybill_export_worker.conversion.avro import AvroSink
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.hdf5 import Hdf5Sink
from waybill_export_worker.conversion.netcdf import NetcdfSink
from waybill_export_worker.conversion.sink import Sink
from waybill_export_worker.conversion.writers.arrow import ArrowSink
from waybill_export_worker.conversion.writers.csv import CsvSink
from waybill_export_worker.conversion.writers.excel import ExcelSink
from waybill_export_worker.conversion.writers.json import JsonSink
from waybill_export_worker.conversion.writers.orc import OrcSink
from waybill_export_worker.conversion.writers.parquet import ParquetSink
from waybill_export_worker.conversion.writers.portable import Portable
from waybill_shared.export_options import ExportOptions

# A writer class: opened with (target, schema, the format's options, warnings to add to).
WriterClass = Callable[[Path, pa.Schema, Any, list[str]], Sink]

WRITERS: Mapping[str, WriterClass] = {
    "csv": CsvSink,
    "tsv": CsvSink,
    "json": JsonSink,
    "excel": ExcelSink,
    "parquet": ParquetSink,
    "hdf5": Hdf5Sink,
    "arrow": ArrowSink,
    "orc": OrcSink,
    "avro": AvroSink,
    "netcdf": NetcdfSink,
}


def open_sink(
    target: Path, target_format: str, schema: pa.Schema, options: ExportOptions, warnings: list[str]
) -> Sink:
    """The writer for `target_format`, opened on `target`; values the format has no
    type for are converted on the way (`Portable`)."""
    writer = WRITERS.get(target_format)
    if writer is None:
        raise ConversionError(f"unknown output format {target_format!r}")
    portable, conversions = Portable.plan(schema, target_format)
    sink = writer(target, portable, options, warnings)
    return Portable(sink, conversions) if conversions else sink
