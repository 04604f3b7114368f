"""Export options per output format (the seed's options plus a few of ours), and the
column selection and row filter every tabular format takes (docs/EXPORT-OPTIONS.md).

Unknown options and bad values are refused when the job is created (422), never
ignored. Pure pydantic, so the gateway validates without any conversion engine.
"""

from __future__ import annotations

import codecs
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

MAX_FILTER_CONDITIONS = 100
MAX_FILTER_DEPTH = 8
MAX_IN_VALUES = 10_000


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the row filter: JSON data, never code ------------------------------------------

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
ORDERING = ("<", "<=", ">", ">=")
Op = Literal["=", "!=", "<", "<=", ">", ">=", "in", "is_null", "not_null", "contains"]


class Condition(_Options):
    """One test of one column: `{"column": "padj", "op": "<", "value": 0.05}`.
    `is_null` and `not_null` take no value, `in` a list, `contains` text."""

    column: str = Field(min_length=1, max_length=1000)
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        value, op = self.value, self.op
        if op in ("is_null", "not_null"):
            if value is not None:
                raise ValueError(f"{op!r} takes no value")
        elif op == "in":
            if not isinstance(value, list) or not value:
                raise ValueError("'in' takes a non-empty list of values")
            if len(value) > MAX_IN_VALUES:
                raise ValueError(f"'in' takes at most {MAX_IN_VALUES} values")
        elif op == "contains":
            if not isinstance(value, str):
                raise ValueError("'contains' takes a text value")
        elif value is None or isinstance(value, list):
            raise ValueError(f"{op!r} takes one value (is_null tests for NA)")
        elif op in ORDERING and isinstance(value, bool):
            raise ValueError(f"{op!r} compares numbers, text or dates, not booleans")
        return self


class AllOf(_Options):
    """Rows that pass every filter in the list."""

    all: list[Filter] = Field(min_length=1)


class AnyOf(_Options):
    """Rows that pass at least one filter in the list."""

    any: list[Filter] = Field(min_length=1)


def _bare_list_is_all(value: Any) -> Any:
    return {"all": value} if isinstance(value, list) else value


def _filter_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "all" if "all" in value else "any" if "any" in value else "condition"
    return "all" if isinstance(value, AllOf) else "any" if isinstance(value, AnyOf) else "condition"


Filter = Annotated[
    Annotated[Condition, Tag("condition")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")],
    Discriminator(_filter_kind),
    BeforeValidator(_bare_list_is_all),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()


def conditions(node: Condition | AllOf | AnyOf) -> list[Condition]:
    """Every condition in the filter, in order."""
    if isinstance(node, Condition):
        return [node]
    return [
        c
        for child in (node.all if isinstance(node, AllOf) else node.any)
        for c in conditions(child)
    ]


def _depth(node: Condition | AllOf | AnyOf) -> int:
    if isinstance(node, Condition):
        return 0
    return 1 + max(_depth(child) for child in (node.all if isinstance(node, AllOf) else node.any))


class _TableOptions(_Options):
    """What every tabular output takes: the columns to keep (in that order) and the
    rows to keep."""

    columns: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, max_length=100_000
    )
    filter: Filter | None = None

    @field_validator("columns")
    @classmethod
    def _no_repeats(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({c for c in value if value.count(c) > 1})
            raise ValueError(f"columns repeats {', '.join(map(repr, repeated))}")
        return value

    @field_validator("filter")
    @classmethod
    def _bounded(cls, value: Condition | AllOf | AnyOf | None) -> Condition | AllOf | AnyOf | None:
        if value is not None:
            if len(conditions(value)) > MAX_FILTER_CONDITIONS:
                raise ValueError(f"at most {MAX_FILTER_CONDITIONS} conditions")
            if _depth(value) > MAX_FILTER_DEPTH:
                raise ValueError(f"all/any nested at most {MAX_FILTER_DEPTH} deep")
        return value


class CsvOptions(_TableOptions):
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


class JsonOptions(_TableOptions):
    orient: Literal["lines", "records"] = "lines"


class ExcelOptions(_TableOptions):
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


class ParquetOptions(_TableOptions):
    compression: Literal["snappy", "gzip", "zstd", "brotli", "lz4", "none"] = "snappy"
    row_group_size: int = Field(default=122_880, ge=1, le=10_000_000)
    use_dictionary: bool = True


class Hdf5Options(_TableOptions):
    compression: Literal["gzip", "lzf", "none"] = "gzip"


class ArrowOptions(_TableOptions):
    """The Arrow IPC file format (Feather v2); lz4 by default, as pyarrow's Feather."""

    compression: Literal["lz4", "zstd", "none"] = "lz4"


class OrcOptions(_TableOptions):
    compression: Literal["zstd", "snappy", "lz4", "zlib", "none"] = "zstd"
    stripe_size: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, le=1024 * 1024 * 1024)


class AvroOptions(_TableOptions):
    """Avro object container file; `null` (no codec) by default: a ZIP package deflates
    it as a whole, on every core."""

    codec: Literal["null", "deflate", "snappy"] = "null"


class NetcdfOptions(_TableOptions):
    compression: Literal["zlib", "none"] = "zlib"


class ZipOptions(_Options):
    """Files as they are: no conversion, so no columns or filter either."""


ExportOptions = (
    CsvOptions
    | JsonOptions
    | ExcelOptions
    | ParquetOptions
    | Hdf5Options
    | ArrowOptions
    | OrcOptions
    | AvroOptions
    | NetcdfOptions
    | ZipOptions
)
TableOptions = _TableOptions

_BY_FORMAT: dict[str, type[_Options]] = {
    "csv": CsvOptions,
    "tsv": TsvOptions,
    "json": JsonOptions,
    "excel": ExcelOptions,
    "parquet": ParquetOptions,
    "hdf5": Hdf5Options,
    "arrow": ArrowOptions,
    "orc": OrcOptions,
    "avro": AvroOptions,
    "netcdf": NetcdfOptions,
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
            f"{'.'.join(_path(e['loc'])) or 'options'}: "
            + (
                e["msg"].removeprefix("Value error, ")
                if e["type"] != "extra_forbidden"
                else "unknown key (a condition has column, op and value)"
                if "filter" in e["loc"]
                else "unknown option for " + export_format
            )
            for e in exc.errors()
        )
        raise ValueError(problems) from exc


def _path(loc: tuple[int | str, ...]) -> list[str]:
    """An error's location without the union tags pydantic puts after every place that
    holds a filter ("filter.all.0.condition.op" reads "filter.all.0.op")."""
    path: list[str] = []
    for i, part in enumerate(loc):
        holds_filter = i > 0 and (
            loc[i - 1] == "filter" or (isinstance(loc[i - 1], int) and loc[i - 2] in ("all", "any"))
        )
        if not (holds_filter and part in ("condition", "all", "any")):
            path.append(str(part))
    return path


# --- what each format takes, for clients that build a form (GET /api/data-export/formats)

FORMAT_TITLES: dict[str, str] = {
    "csv": "CSV (comma-separated values)",
    "tsv": "TSV (tab-separated values)",
    "json": "JSON (JSON Lines or one array of records)",
    "excel": "Excel workbook (.xlsx)",
    "parquet": "Apache Parquet",
    "hdf5": "HDF5 (a table)",
    "arrow": "Arrow IPC file (Feather v2)",
    "orc": "Apache ORC",
    "avro": "Avro object container file",
    "netcdf": "netCDF-4 (numeric tables)",
    "zip": "ZIP of the files as they are (no conversion)",
}


class OptionField(BaseModel):
    """One option of a format, as a form shows it: `kind` is boolean, integer, text,
    choice (one of `choices`) or integer_pair (`[row, col]`, or null)."""

    name: str
    kind: Literal["boolean", "integer", "text", "choice", "integer_pair"]
    default: Any
    nullable: bool = False
    choices: list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None


class FormatDescription(BaseModel):
    """An export format: its options, and whether it takes `columns` and `filter`."""

    name: str
    title: str
    columns_and_filter: bool
    options: list[OptionField]


def describe_format(export_format: str) -> FormatDescription:
    """What `export_options` of this format takes, read from its options model (so a
    form built from it offers exactly what the API accepts)."""
    model = options_model(export_format)
    if model is None:
        raise ValueError(f"unknown export format {export_format!r}")
    tabular = issubclass(model, _TableOptions)
    fields = [
        _option_field(name, info)
        for name, info in model.model_fields.items()
        if not (tabular and name in _TableOptions.model_fields)
    ]
    return FormatDescription(
        name=export_format,
        title=FORMAT_TITLES[export_format],
        columns_and_filter=tabular,
        options=fields,
    )


def _option_field(name: str, info: Any) -> OptionField:
    annotation, nullable = info.annotation, False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        (annotation,) = members
    bounds: dict[str, int] = {}
    for constraint in info.metadata:
        for attribute, key in (
            ("ge", "minimum"),
            ("le", "maximum"),
            ("min_length", "min_length"),
            ("max_length", "max_length"),
        ):
            if getattr(constraint, attribute, None) is not None:
                bounds[key] = getattr(constraint, attribute)
    field = {"name": name, "default": info.default, "nullable": nullable, **bounds}
    if get_origin(annotation) is Literal:
        return OptionField(kind="choice", choices=list(get_args(annotation)), **field)
    if annotation is bool:
        return OptionField(kind="boolean", **field)
    if annotation is int:
        return OptionField(kind="integer", **field)
    if annotation is str:
        return OptionField(kind="text", **field)
    if get_origin(annotation) is tuple and get_args(annotation) == (int, int):
        return OptionField(kind="integer_pair", **field)
    raise TypeError(f"no form field for option {name!r} ({annotation!r})")
