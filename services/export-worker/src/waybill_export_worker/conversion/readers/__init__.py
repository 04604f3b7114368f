"""Tabular inputs as record batches with one schema for the whole file. One module a
format (HDF5, Avro and netCDF live in their format modules beside this package, with
their writers); CSV and TSV are `csv_source.CsvSource`, which the converter drives
itself (it may hand the file to the polars engine). `READERS` maps every other input
format to how it is opened: `open_reader`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pyarrow as pa

from waybill_export_worker.conversion.avro import avro_batches
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.hdf5 import hdf5_batches
from waybill_export_worker.conversion.netcdf import netcdf_batches
from waybill_export_worker.conversion.readers.arrow import arrow_batches
from waybill_export_worker.conversion.readers.excel import ExcelSource
from waybill_export_worker.conversion.readers.json import (
    first_json_char,
    json_array_batches,
    json_lines_batches,
)
from waybill_export_worker.conversion.readers.orc import orc_batches
from waybill_export_worker.conversion.readers.parquet import parquet_batches

OnRead = Callable[[int], None]
# An opened input: its schema, then its batches, asked in that order for each attempt
# (a reader that widens a column raises Restart, and the converter starts again).
Opened = tuple[Callable[[], pa.Schema], Callable[[], Iterator[pa.RecordBatch]]]
Batches = Callable[[Path, OnRead | None], Iterator[pa.RecordBatch]]
SchemaAndBatches = Callable[[Path, OnRead | None], tuple[pa.Schema, Iterator[pa.RecordBatch]]]


class _Peeked:
    """A reader that learns the schema from its first batch. Each attempt (`start`)
    opens the stream anew, as a restart after a widening reads from the start; a
    later batch of another schema is cast safely, never truncated."""

    def __init__(self, stream: Callable[[], Iterator[pa.RecordBatch]]) -> None:
        self.stream = stream
        self.rest: Iterator[pa.RecordBatch] = iter(())
        self.first: pa.RecordBatch | None = None
        self.schema = pa.schema([])

    def start(self) -> pa.Schema:
        self.rest = self.stream()
        self.first = next(self.rest, None)
        self.schema = self.first.schema if self.first is not None else pa.schema([])
        return self.schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.first is not None:
            yield self.first
        for batch in self.rest:
            yield batch if batch.schema == self.schema else batch.cast(self.schema)


def _peeked(stream: Callable[[], Iterator[pa.RecordBatch]]) -> Opened:
    peeked = _Peeked(stream)
    return peeked.start, peeked.batches


def _schema_first(read: SchemaAndBatches) -> Callable[[Path, OnRead], Opened]:
    """A format whose file states its schema: read once for it, then per attempt."""

    def open_file(source: Path, on_read: OnRead) -> Opened:
        schema, _ = read(source, None)
        return (lambda: schema), (lambda: read(source, on_read)[1])

    return open_file


def _schema_from_first_batch(read: Batches) -> Callable[[Path, OnRead], Opened]:
    def open_file(source: Path, on_read: OnRead) -> Opened:
        return _peeked(lambda: read(source, on_read))

    return open_file


def _open_json(source: Path, on_read: OnRead) -> Opened:
    read = json_array_batches if first_json_char(source) == "[" else json_lines_batches
    return _peeked(lambda: read(source, on_read))


def _open_excel(source: Path, on_read: OnRead) -> Opened:
    # One source for every attempt: the types it learnt carry over.
    return _peeked(ExcelSource(source, on_read).read)


READERS: Mapping[str, Callable[[Path, OnRead], Opened]] = {
    "json": _open_json,
    "jsonl": _open_json,
    "parquet": _schema_first(parquet_batches),
    "excel": _open_excel,
    "hdf5": _schema_from_first_batch(hdf5_batches),
    "arrow": _schema_first(arrow_batches),
    "orc": _schema_first(orc_batches),
    "avro": _schema_from_first_batch(avro_batches),
    "netcdf": _schema_from_first_batch(netcdf_batches),
}


def open_reader(source: Path, source_format: str, on_read: OnRead) -> Opened:
    """The input `source`, in `source_format` (any but CSV and TSV), opened."""
    open_file = READERS.get(source_format)
    if open_file is None:
        raise ConversionError(f"not a tabular file (detected format: {source_format})")
    return open_file(source, on_read)
