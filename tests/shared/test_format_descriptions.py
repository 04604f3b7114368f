"""GET /api/data-export/formats is built from the option models: what it describes
is exactly what a create accepts."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from waybill_shared.contracts.messages import ExportFormat
from waybill_shared.export_options import describe_format, parse_export_options

FORMATS = get_args(ExportFormat)


@pytest.mark.parametrize("export_format", FORMATS)
def test_every_described_value_is_accepted(export_format: str) -> None:
    description = describe_format(export_format)
    assert description.name == export_format
    for option in description.options:
        values: list[Any] = [option.default]
        values += option.choices or []
        values += [v for v in (option.minimum, option.maximum) if v is not None]
        if option.kind == "integer_pair":
            values.append([1, 2])
        for value in values:
            parsed = parse_export_options(export_format, {option.name: value})
            # Accepted as given, not coerced into something else.
            kept = parsed.model_dump(mode="json")[option.name]
            assert kept == (list(value) if isinstance(value, tuple) else value), option.name


@pytest.mark.parametrize("export_format", FORMATS)
def test_values_beyond_what_is_described_are_refused(export_format: str) -> None:
    for option in describe_format(export_format).options:
        bad: list[Any] = []
        if option.choices:
            bad.append("no-such-choice")
        if option.minimum is not None:
            bad.append(option.minimum - 1)
        if option.maximum is not None:
            bad.append(option.maximum + 1)
        if option.max_length is not None:
            bad.append("x" * (option.max_length + 1))
        for value in bad:
            with pytest.raises(ValueError, match=option.name):
                parse_export_options(export_format, {option.name: value})


def test_the_form_knows_the_options_that_matter() -> None:
    parquet = {o.name: o for o in describe_format("parquet").options}
    assert parquet["compression"].choices == ["snappy", "gzip", "zstd", "brotli", "lz4", "none"]
    assert parquet["compression"].default == "snappy"
    assert {o.name: o.kind for o in describe_format("csv").options}["delimiter"] == "text"
    assert describe_format("excel").options[0].name == "sheet_name"
    freeze = {o.name: o for o in describe_format("excel").options}["freeze_panes"]
    assert (freeze.kind, freeze.nullable) == ("integer_pair", True)
    assert describe_format("parquet").columns_and_filter
    assert not describe_format("zip").columns_and_filter
    assert describe_format("zip").options == []
    with pytest.raises(ValueError, match="unknown export format"):
        describe_format("docx")
