"""Export options per output format (the seed's options plus a few of ours).

Unknown options and bad values are refused when the job is created (422), never
ignored. Pure pydantic, so the gateway validates without any conversion engine.
"""

from __future__ import annotations

import codecs
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Options):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote_char: str = Field(default='"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    include_header: bool = True
    formula_escape: bool = True

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


class TsvOptions(CsvOptions):
    delimiter: str = Field(default="\t", min_length=1, max_length=1)


class JsonOptions(_Options):
    orient: Literal["lines", "records"] = "lines"


class ExcelOptions(_Options):
    sheet_name: str = Field(default="Sheet1", min_length=1, max_length=31)
    include_index: bool = False
    freeze_panes: tuple[int, int] | None = None
    formula_escape: bool = True

    @field_validator("sheet_name")
    @classmethod
    def _valid_sheet_name(cls, value: str) -> str:
        bad = set(value) & set("[]:*?/\\")
        if bad:
            raise ValueError(f"sheet_name may not contain {''.join(sorted(bad))}")
        return value


class ParquetOptions(_Options):
    compression: Literal["snappy", "gzip", "zstd", "brotli", "lz4", "none"] = "snappy"
    row_group_size: int = Field(default=122_880, ge=1, le=10_000_000)
    use_dictionary: bool = True


class Hdf5Options(_Options):
    compression: Literal["gzip", "lzf", "none"] = "gzip"


class ZipOptions(_Options):
    pass


ExportOptions = CsvOptions | JsonOptions | ExcelOptions | ParquetOptions | Hdf5Options | ZipOptions

_BY_FORMAT: dict[str, type[_Options]] = {
    "csv": CsvOptions,
    "tsv": TsvOptions,
    "json": JsonOptions,
    "excel": ExcelOptions,
    "parquet": ParquetOptions,
    "hdf5": Hdf5Options,
    "zip": ZipOptions,
}


def options_model(export_format: str) -> type[BaseModel] | None:
    """The options of a format, as a model (None: no such format)."""
    return _BY_FORMAT.get(export_format)


def parse_export_options(export_format: str, raw: dict[str, Any] | None) -> ExportOptions:
    """The options model for a format; ValueError with a clear message otherwise."""
    model = options_model(export_format)
    if model is None:
        raise ValueError(f"unknown export format {export_format!r}")
    try:
        return model.model_validate(raw or {})  # type: ignore[return-value]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: "
            + (
                "unknown option for " + export_format
                if e["type"] == "extra_forbidden"
                else e["msg"]
            )
            for e in exc.errors()
        )
        raise ValueError(problems) from exc
