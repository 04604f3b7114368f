"""HDF5 in a documented layout any HDF5 reader understands (no pickles):

    /table                      group; attrs: format="waybill-table", version=1,
                                columns=JSON list of names (the column order), rows
    /table/<i>                  one dataset per column i (0-based), chunked, gzip;
                                attrs: name, arrow_type; int64 | float64 | bool |
                                variable-length UTF-8 strings
    /table/<i>_na               bool mask, present when the column has nulls (True = NA)

`read_table(path)` turns it back into a pandas DataFrame (nullable dtypes); h5py
reads it directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import polars as pl
import pyarrow as pa
from h5py import h5a, h5d, h5p, h5s, h5t

from waybill_export_worker.conversion import deflate
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import Hdf5Options

MAX_CHUNK_ROWS = 65_536
MIN_CHUNK_ROWS = 1_024
# Rows are gathered up to about this many bytes (all columns) and written as whole
# chunks: every write resizes and writes each column, and with hundreds of columns
# the per-call cost, not the data, was the time (a 500-column matrix written batch
# by batch ran at 44 MB/s).
BUFFER_BYTES = 16 * 1024 * 1024
_STR = h5py.string_dtype("utf-8")
_STR_TYPE = h5t.py_create(_STR, logical=True)
_C_STRING = h5t.C_S1.copy()  # in memory: char* per value, NUL-terminated UTF-8
_C_STRING.set_size(h5t.VARIABLE)
_C_STRING.set_cset(h5t.CSET_UTF8)
_STORED = {
    "int64": (pl.Int64, 0),
    "float64": (pl.Float64, float("nan")),
    "bool": (pl.Boolean, False),
}
_STORED_BYTES = {"int64": 8, "float64": 8, "bool": 1, "string": 16}  # a VL string: a pointer


def _kind(t: pa.DataType) -> tuple[str, Any]:
    if pa.types.is_integer(t):
        return "int64", np.int64
    if pa.types.is_floating(t):
        return "float64", np.float64
    if pa.types.is_boolean(t):
        return "bool", np.bool_
    return "string", _STR


def chunk_rows(kinds: list[str]) -> int:
    """Rows per chunk: what BUFFER_BYTES holds across all columns, so that a flush
    writes whole chunks of every dataset (a 20-column table: 65,536 rows; a
    500-column matrix: 4,096)."""
    row_bytes = sum(_STORED_BYTES[k] for k in kinds) or 1
    rows = BUFFER_BYTES // row_bytes
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, 1 << max(rows.bit_length() - 1, 0)))


def _numbers(column: pa.Array, kind: str, fill: Any = None) -> Any:
    """A number or boolean column as the numpy array its dataset stores, NA filled
    (the mask keeps where). Through polars, not pyarrow: pyarrow imports pandas the
    first time it turns values into numpy or a Python scalar into Arrow (0.3 s and
    ~45 MB per worker process). Columns without nulls of the stored type go as they
    are: with hundreds of columns the per-column conversions were the time."""
    series = pl.Series(column)
    target, default = _STORED[kind]
    fill = default if fill is None else fill
    if series.dtype != target:
        series = series.cast(target)
    if series.null_count():
        series = series.fill_null(fill)
    return series.to_numpy()


def _c_strings(column: pa.Array, name: str) -> tuple[pa.Array, Any]:
    """The column as HDF5 takes variable-length strings in memory, an array of C string
    pointers: each value (NA as "") NUL-terminated in one Arrow buffer, which must
    stay alive until written, and a pointer to each. h5py's own path encodes every
    value as a Python str, and took twice as long."""
    series = pl.Series(column.cast(pa.string())).fill_null("")
    if series.str.contains("\x00", literal=True).any():
        raise ConversionError(
            f"column {name!r} holds a NUL character, which HDF5 strings cannot hold"
        )
    terminated = (series + "\x00").to_arrow()
    if isinstance(terminated, pa.ChunkedArray):
        terminated = terminated.combine_chunks()
    terminated = terminated.cast(pa.large_string())
    _, offsets, data = terminated.buffers()
    starts = np.frombuffer(offsets, dtype=np.int64)[
        terminated.offset : terminated.offset + len(terminated)
    ]
    return terminated, starts.astype(np.uint64) + np.uint64(data.address)


def _text_attribute(dataset: h5py.Dataset, name: str, value: str) -> None:
    """A UTF-8 string attribute, as `dataset.attrs[name] = value` writes it, in a third
    of the time (two per column)."""
    attribute = h5a.create(dataset.id, name.encode(), _STR_TYPE, h5s.create(h5s.SCALAR))
    attribute.write(np.array(value, dtype=_STR))


def _append(dataset: h5py.Dataset, start: int, values: Any, memory_type: Any = None) -> None:
    """Grow `dataset` and write `values` from row `start`, through h5py's low-level
    calls: a slice assignment costs ~0.2 ms of Python per call, and a 500-column table
    makes 500 of them per chunk."""
    n = len(values)
    dataset.id.set_extent((start + n,))
    file_space = dataset.id.get_space()
    file_space.select_hyperslab((start,), (n,))
    dataset.id.write(
        h5s.create_simple((n,)), file_space, np.ascontiguousarray(values), mtype=memory_type
    )


class ChunkWriter:
    """Numbers, booleans and NA masks go to HDF5 as whole chunks through
    `write_direct_chunk`, past HDF5's selection and filter code: on a 500-column matrix
    that halved the write. For gzip, each chunk is a zlib stream made by ISA-L on every
    core (the format HDF5's gzip filter stores and any reader inflates): 11x h5py's
    gzip level 4 on two cores, files the same size. Chunks are written in the order
    given, once `drain` collects them; lzf (h5py's own filter) takes the usual write."""

    def __init__(self, chunk_rows: int, compression: str | None) -> None:
        self.chunk_rows = chunk_rows
        self.gzip = compression == "gzip"
        self.direct = compression in (None, "none", "gzip")
        self.pending: list[tuple[h5py.Dataset, int, Future[bytes]]] = []

    def append(self, dataset: h5py.Dataset, start: int, values: np.ndarray) -> None:
        if not self.direct:
            _append(dataset, start, values)
            return
        n = len(values)
        dataset.id.set_extent((start + n,))
        for offset in range(0, n, self.chunk_rows):
            piece = values[offset : offset + self.chunk_rows]
            if len(piece) < self.chunk_rows:  # the last chunk, padded to full size
                piece = np.concatenate([piece, np.zeros(self.chunk_rows - len(piece), piece.dtype)])
            data = np.ascontiguousarray(piece).view(np.uint8).data
            if self.gzip:
                compressed = deflate.pool().submit(deflate.zlib_stream, data)
                self.pending.append((dataset, start + offset, compressed))
            else:
                dataset.id.write_direct_chunk((start + offset,), data)

    def drain(self) -> None:
        try:
            for dataset, start, compressed in self.pending:
                dataset.id.write_direct_chunk((start,), compressed.result())
        finally:
            self.pending.clear()


class WholeChunks:
    """Batches gathered until they make whole chunks of rows (`chunk_rows` each):
    `add` gives those rows as one batch when there are enough, `rest` the remainder
    at the end. A sink that writes whole chunks only needs no HDF5 chunk cache."""

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        if batch.num_rows == 0:
            return None
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows < self.chunk_rows:
            return None
        return self._take(self.pending_rows - self.pending_rows % self.chunk_rows)

    def rest(self) -> pa.RecordBatch | None:
        return self._take(self.pending_rows) if self.pending_rows else None

    def _take(self, n: int) -> pa.RecordBatch:
        table = pa.Table.from_batches(self.pending)
        rest = table.slice(n)
        self.pending, self.pending_rows = rest.to_batches(), rest.num_rows
        return table.slice(0, n).combine_chunks().to_batches()[0]


class Hdf5Sink(Sink):
    """Writes whole chunks only, so HDF5 needs no chunk cache: its default (1 MiB per
    dataset) held a part-written chunk of every column, 250 MB on a 500-column
    matrix, and flushed them all at close."""

    def __init__(
        self, path: Path, schema: pa.Schema, options: Hdf5Options, warnings: list[str]
    ) -> None:
        compression = options.compression
        self.file = h5py.File(path, "w", rdcc_nbytes=0)
        self.group = self.file.create_group("table")
        self.kinds = [_kind(f.type) for f in schema]
        self.chunk_rows = chunk_rows([kind for kind, _ in self.kinds])
        self.chunks = ChunkWriter(self.chunk_rows, compression)
        self.rows = 0
        self.buffer = WholeChunks(self.chunk_rows)
        self.creation: h5p.PropDCID | None = None  # the first dataset's, for the rest
        self.datasets = [
            self._create(str(i), dtype, rows=0, compression=compression)
            for i, (_, dtype) in enumerate(self.kinds)
        ]
        for dataset, field, (kind, _) in zip(self.datasets, schema, self.kinds, strict=True):
            _text_attribute(dataset, "name", field.name)
            _text_attribute(dataset, "arrow_type", kind)
        self.masks: list[h5py.Dataset | None] = [None] * len(schema)
        self.group.attrs["format"] = "waybill-table"
        self.group.attrs["version"] = 1
        self.group.attrs["columns"] = json.dumps(schema.names)

    def _create(
        self, name: str, dtype: Any, *, rows: int, compression: str | None = None
    ) -> h5py.Dataset:
        """A growable chunked dataset. The first is made by h5py, which sets up the
        chunking and filters; the rest reuse its creation properties through the
        low-level call (h5py's own path cost ~0.4 ms per dataset: 0.2 s on a
        500-column matrix, as much as writing it)."""
        if self.creation is None:
            opts: dict[str, Any] = {"chunks": (self.chunk_rows,), "maxshape": (None,)}
            if compression and compression != "none":
                opts["compression"] = compression
            first = self.group.create_dataset(name, shape=(rows,), dtype=dtype, **opts)
            self.creation = first.id.get_create_plist()
            return first
        space = h5s.create_simple((rows,), (h5s.UNLIMITED,))
        file_type = h5t.py_create(np.dtype(dtype), logical=True)
        return h5py.Dataset(
            h5d.create(self.group.id, name.encode(), file_type, space, dcpl=self.creation)
        )

    def write(self, batch: pa.RecordBatch) -> None:
        rows = self.buffer.add(batch)
        if rows is not None:
            self._write_rows(rows)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        start, end = self.rows, self.rows + batch.num_rows
        for i, column in enumerate(batch.columns):
            kind = self.kinds[i][0]
            if kind == "string":
                # `_text` holds the bytes the pointers point into, until written.
                _text, pointers = _c_strings(column, batch.schema.names[i])
                _append(self.datasets[i], start, pointers, _C_STRING)
            else:
                self.chunks.append(self.datasets[i], start, _numbers(column, kind))
            if column.null_count or self.masks[i] is not None:
                mask = self.masks[i]
                if mask is None:
                    mask = self._create(f"{i}_na", np.bool_, rows=start)
                    self.masks[i] = mask
                self.chunks.append(mask, start, pl.Series(column.is_null()).to_numpy())
        self.chunks.drain()
        self.rows = end

    def close(self) -> None:
        try:
            rest = self.buffer.rest()
            if rest is not None:
                self._write_rows(rest)
            self.group.attrs["rows"] = self.rows
        finally:
            self.file.close()


def hdf5_batches(
    path: Path, on_read: Callable[[int], None] | None, rows_per_batch: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """A table in the layout above, batch by batch."""
    with h5py.File(path, "r") as f:
        group = f.get("table")
        if group is None or group.attrs.get("format") != "waybill-table":
            raise ConversionError(
                "not an HDF5 table in Waybill's layout (/table with format=waybill-table)"
            )
        names = json.loads(group.attrs["columns"])
        rows = int(group.attrs.get("rows", group["0"].shape[0] if names else 0))
        for start in range(0, rows, rows_per_batch):
            end = min(start + rows_per_batch, rows)
            arrays = []
            for i in range(len(names)):
                d = group[str(i)]
                kind = d.attrs["arrow_type"]
                values = d[start:end]
                mask = group[f"{i}_na"][start:end] if f"{i}_na" in group else None
                if kind == "string":
                    arrays.append(
                        pa.array(
                            [v.decode() if isinstance(v, bytes) else v for v in values],
                            pa.string(),
                            mask=mask,
                        )
                    )
                else:
                    typ = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}[kind]
                    arrays.append(pa.array(values, typ, mask=mask))
            yield pa.RecordBatch.from_arrays(arrays, names=names)
            if on_read is not None:
                on_read(path.stat().st_size * end // max(rows, 1))


def read_table(path: Path) -> Any:
    """The table as a pandas DataFrame (NA as pandas NA, column order kept)."""
    batches = list(hdf5_batches(path, None, rows_per_batch=1_000_000))
    if not batches:
        import pandas as pd

        with h5py.File(path, "r") as f:
            return pd.DataFrame(columns=json.loads(f["table"].attrs["columns"]))
    return pa.Table.from_batches(batches).to_pandas(types_mapper=lambda t: None)
