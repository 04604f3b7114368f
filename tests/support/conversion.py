"""Conversion helpers shared by the export-worker tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waybill_export_worker.conversion import ConversionResult, convert
from waybill_shared.export_options import parse_export_options


def convert_file(
    source: Path,
    source_format: str,
    target: Path,
    fmt: str,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> ConversionResult:
    """`convert` with the options as a job gives them (validated as the gateway does)."""
    return convert(
        source=source,
        source_format=source_format,
        target=target,
        target_format=fmt,
        options=parse_export_options(fmt, options),
        **kwargs,
    )
