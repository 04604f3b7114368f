"""Parsing a delivery into its contract (waybill_shared.messaging.parsing): every way a
message is accepted, and every reason it is refused (the reason it is dead-lettered
with)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from waybill_shared.contracts.messages import (
    DataExportRequested,
    HistoryImportRequested,
    Message,
)
from waybill_shared.messaging.parsing import MAX_BODY_BYTES, InvalidMessage, parse_message

EXPORT = DataExportRequested.message_type()
IMPORT = HistoryImportRequested.message_type()
BOTH: dict[str, type[Message]] = {EXPORT: DataExportRequested, IMPORT: HistoryImportRequested}
ONLY_EXPORTS: dict[str, type[Message]] = {EXPORT: DataExportRequested}
TASK = uuid.UUID("7f0c1e0a-3b7d-4a52-9d53-2a3c1f1d0b01")
GOOD = {"task_id": str(TASK), "owner_id": 1, "name": "n", "export_format": "zip"}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("content_type", "message_type", "models"),
    [
        ("application/json", EXPORT, BOTH),
        (None, EXPORT, BOTH),
        ("", EXPORT, ONLY_EXPORTS),
        # No type: read as the only model there is.
        ("application/json", None, ONLY_EXPORTS),
        ("application/json", "", ONLY_EXPORTS),
    ],
)
def test_accepted(
    content_type: str | None, message_type: str | None, models: dict[str, type[Message]]
) -> None:
    parsed = parse_message(
        body(GOOD), content_type=content_type, message_type=message_type, models=models
    )
    assert isinstance(parsed, DataExportRequested)
    assert (parsed.task_id, parsed.owner_id, parsed.export_format) == (TASK, 1, "zip")


@pytest.mark.parametrize(
    ("raw", "content_type", "message_type", "models", "reason"),
    [
        (
            b" " * (MAX_BODY_BYTES + 1),
            None,
            EXPORT,
            BOTH,
            f"body of {MAX_BODY_BYTES + 1} bytes exceeds {MAX_BODY_BYTES}",
        ),
        (
            body(GOOD),
            "text/plain",
            EXPORT,
            BOTH,
            "content_type 'text/plain' is not application/json",
        ),
        (
            body(GOOD),
            None,
            "waybill.nothing.v1",
            BOTH,
            f"unknown message type 'waybill.nothing.v1'; expected one of: {EXPORT}, {IMPORT}",
        ),
        (body(GOOD), None, None, BOTH, f"unknown message type None; expected one of: {EXPORT}, "),
        (b"\xff\xfe{}", None, EXPORT, BOTH, "body is not UTF-8: "),
        (b"{not json", None, EXPORT, BOTH, "body is not JSON: "),
        (body([GOOD]), None, EXPORT, BOTH, f"does not match {EXPORT}: <body>: "),
        (
            body({**GOOD, "owner_id": 0}),
            None,
            EXPORT,
            BOTH,
            f"does not match {EXPORT}: owner_id: Input should be greater than or equal to 1",
        ),
        (
            body({**GOOD, "export_format": "pdf"}),
            None,
            EXPORT,
            BOTH,
            f"does not match {EXPORT}: export_format: Input should be ",
        ),
        (
            body({**GOOD, "surprise": 1}),
            None,
            EXPORT,
            BOTH,
            f"does not match {EXPORT}: surprise: Extra inputs are not permitted",
        ),
        (
            body({"task_id": str(TASK)}),
            None,
            IMPORT,
            BOTH,
            f"does not match {IMPORT}: owner_id: Field required; store_content_uri: Field required",
        ),
    ],
)
def test_refused_with_the_reason(
    raw: bytes,
    content_type: str | None,
    message_type: str | None,
    models: dict[str, type[Message]],
    reason: str,
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        parse_message(raw, content_type=content_type, message_type=message_type, models=models)
    assert str(refused.value).startswith(reason), str(refused.value)


def test_the_largest_body_allowed_is_read() -> None:
    padded = body(GOOD)[:-1] + b" " * (MAX_BODY_BYTES - len(body(GOOD))) + b"}"
    assert len(padded) == MAX_BODY_BYTES
    parsed = parse_message(padded, content_type=None, message_type=EXPORT, models=BOTH)
    assert isinstance(parsed, DataExportRequested)
