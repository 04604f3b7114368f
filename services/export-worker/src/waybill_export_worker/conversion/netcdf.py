"""netCDF-4 tables, numeric ones foremost. h5netcdf lays out the file and its dimension,
h5py the variables with the attributes netCDF-C gives them; the data go as whole chunks through
the HDF5 writer's `ChunkWriter` (zlib streams made by ISA-L on every core, the
filter netCDF's `zlib=True` sets).

    dimension  row                 unlimited; the table's rows (`row_` etc. if a
                                   column is itself called "row")
    variable   <column>(row)       one per column, in order (global attribute
                                   `columns`: JSON list of the names); a name netCDF
                                   cannot hold ("/", control characters) is written
                                   with "_" and keeps the original in `column`
      integers: int64, _FillValue -9223372036854775806 (NA; a value equal to it is
                refused rather than read back as NA)
      floats:   double, _FillValue NaN
      booleans: byte 0/1, flag_values [0, 1], flag_meanings "false true",
                _FillValue -127
      text:     string (variable length), _FillValue "": NA is written as "" and
                xarray reads it back as NA; an empty text is NA too (in CSV it
                always is). Dates and timestamps are ISO text, as in HDF5.

`netcdf_batches` reads such a file back, and any netCDF-4 file whose variables all
lie along one dimension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import polars as pl
import pyarrow as pa

from waybill_export_worker.conversion.column_names import valid_names
from waybill_export_worker.conversion.errors import ConversionError
from waybill_export_worker.conversion.hdf5 import (
    _C_STRING,
    _STR,
    ChunkWriter,
    WholeChunks,
    _append,
    _c_strings,
    _kind,
    _numbers,
    chunk_rows,
)
from waybill_export_worker.conversion.sink import Sink
from waybill_shared.export_options import NetcdfOptions

INT_FILL = np.int64(-9223372036854775806)  # netCDF's default fill for int64
BOOL_FILL = np.int8(-127)  # and for byte
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f]")
_FORMAT = "waybill-table"


def netcdf_names(names: list[str]) -> list[str]:
    """Each column's variable name: itself where netCDF allows it, else with "_"."""
    return valid_names(names, _netcdf_name)


def _netcdf_name(name: str) -> str:
    fixed = _BAD_NAME.sub("_", name)
    if not fixed or not (fixed[0].isalnum() or fixed[0] == "_"):
        fixed = "_" + fixed
    return fixed.rstrip(" ") + "_" if fixed.endswith(" ") else fixed


class NetcdfSink(Sink):
    def __init__(
        self, path: Path, schema: pa.Schema, options: NetcdfOptions, warnings: list[str]
    ) -> None:
        # h5netcdf (~2.5 MB, ~80 ms) is imported by the conversions that use it only.
        import h5netcdf

        compression = "gzip" if options.compression == "zlib" else None
        self.kinds = [_kind(f.type)[0] for f in schema]
        self.chunk_rows = chunk_rows(self.kinds)
        self.chunks = ChunkWriter(self.chunk_rows, compression)
        self.buffer = WholeChunks(self.chunk_rows)
        self.names = schema.names
        self.rows = 0
        variables = netcdf_names(schema.names)
        self.dimension = "row"
        while self.dimension in variables:
            self.dimension += "_"
        renamed = sum(a != b for a, b in zip(schema.names, variables, strict=True))
        if renamed:
            warnings.append(f"{renamed} column names changed to netCDF names (see `column`)")
        # h5netcdf lays out what makes the file netCDF-4 (its _NCProperties, the
        # dimension scale); the variables are made by h5py: h5netcdf's own
        # create_variable sizes an unlimited dimension by visiting every variable
        # already made, 60 s for a 500-column matrix.
        with h5netcdf.File(path, "w") as layout:
            layout.dimensions = {self.dimension: None}
            layout.attrs["format"] = _FORMAT
            layout.attrs["columns"] = json.dumps(schema.names)
        # No chunk cache: whole chunks only (see Hdf5Sink).
        self.file = h5py.File(path, "r+", rdcc_nbytes=0)
        try:
            self.scale = self.file[self.dimension]
            self.variables = [
                self._variable(name, original, kind, compression)
                for name, original, kind in zip(variables, schema.names, self.kinds, strict=True)
            ]
        except Exception:
            self.file.close()
            raise

    def _variable(
        self, name: str, original: str, kind: str, compression: str | None
    ) -> h5py.Dataset:
        """A variable along the dimension, with the attributes netCDF-C gives one."""
        dtype: Any = {"int64": np.int64, "float64": np.float64, "bool": np.int8}.get(kind, _STR)
        fill = {"int64": INT_FILL, "float64": np.float64("nan"), "bool": BOOL_FILL}.get(kind, "")
        dataset = self.file.create_dataset(
            name,
            shape=(0,),
            maxshape=(None,),
            dtype=dtype,
            chunks=(self.chunk_rows,),
            compression=compression,
            fillvalue=fill if kind != "string" else None,
        )
        dataset.dims[0].attach_scale(self.scale)
        dataset.attrs["_Netcdf4Coordinates"] = np.array([0], dtype=np.int32)
        dataset.attrs["_FillValue"] = fill if kind == "string" else np.array([fill], dtype=dtype)
        if kind == "bool":
            dataset.attrs["flag_values"] = np.array([0, 1], dtype=np.int8)
            dataset.attrs["flag_meanings"] = "false true"
        if name != original:
            dataset.attrs["column"] = original
        return dataset

    def write(self, batch: pa.RecordBatch) -> None:
        rows = self.buffer.add(batch)
        if rows is not None:
            self._write_rows(rows)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        start = self.rows
        for i, (column, kind, dataset) in enumerate(
            zip(batch.columns, self.kinds, self.variables, strict=True)
        ):
            if kind == "string":
                _text, pointers = _c_strings(column, self.names[i])  # _text: the bytes, kept
                _append(dataset, start, pointers, _C_STRING)
            elif kind == "bool":
                values = pl.Series(column).cast(pl.Int8).fill_null(BOOL_FILL).to_numpy()
                self.chunks.append(dataset, start, values)
            else:
                if kind == "int64" and (pl.Series(column).cast(pl.Int64) == INT_FILL).any():
                    raise ConversionError(
                        f"column {self.names[i]!r} holds {INT_FILL}, netCDF's mark for NA"
                    )
                fill = INT_FILL if kind == "int64" else np.nan
                self.chunks.append(dataset, start, _numbers(column, kind, fill))
        self.chunks.drain()
        self.rows += batch.num_rows

    def close(self) -> None:
        try:
            rest = self.buffer.rest()
            if rest is not None:
                self._write_rows(rest)
            self.scale.resize((self.rows,))
        finally:
            self.file.close()


def netcdf_batches(
    path: Path, on_read: Callable[[int], None] | None, rows_per_batch: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """A netCDF-4 table: every variable one-dimensional along the same dimension
    (coordinate variables included), NA where a value is the variable's _FillValue
    (NaN for floats); booleans in the layout above come back as booleans."""
    import h5netcdf

    try:
        f = h5netcdf.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ConversionError(f"not a readable netCDF-4 file: {exc}") from exc
    with f:
        variables = dict(f.variables)
        dims = {v.dimensions for v in variables.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise ConversionError(
                "not a table: a netCDF file converts when all its variables lie along one dimension"
            )
        (dimension,) = next(iter(dims))
        names = list(variables)
        if f.attrs.get("format") == _FORMAT:
            by_column = {v.attrs.get("column", n): n for n, v in variables.items()}
            names = [by_column[c] for c in json.loads(f.attrs["columns"])]
        rows = f.dimensions[dimension].size
        size = path.stat().st_size
        for start in range(0, rows, rows_per_batch):
            end = min(start + rows_per_batch, rows)
            arrays = [_column(variables[n], start, end) for n in names]
            yield pa.RecordBatch.from_arrays(
                arrays, names=[variables[n].attrs.get("column", n) for n in names]
            )
            if on_read is not None:
                on_read(size * end // max(rows, 1))


def _column(variable: Any, start: int, end: int) -> pa.Array:
    values = variable._h5ds[start:end]
    fill = variable.attrs.get("_FillValue")
    if values.dtype.kind == "O":  # text
        text = [v.decode() if isinstance(v, bytes) else v for v in values]
        mask = np.array([v == (fill or "") for v in text]) if fill is not None else None
        return pa.array(text, pa.string(), mask=mask)
    if values.dtype.kind == "f":
        mask = np.isnan(values) | (values == fill if fill is not None else False)
    else:
        mask = values == fill if fill is not None else None
    if variable.attrs.get("flag_meanings") == "false true":
        return pa.array(values == 1, pa.bool_(), mask=mask)
    return pa.array(values, mask=mask)
