"""What the commands share: the --json option, the API connection, and parsing of the
values people type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from waybill_cli import config
from waybill_cli.client import Api
from waybill_cli.errors import usage_error

JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON document on stdout (for scripts)."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite a file that exists.")]
LimitOpt = Annotated[int, typer.Option(min=1, max=500, help="At most this many items.")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="Skip this many items.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every item, page after page.")]


@contextmanager
def connect() -> Iterator[Api]:
    api = Api.from_config(config.load())
    try:
        yield api
    finally:
        api.close()


def json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise usage_error(f"{what} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise usage_error(f'{what} must be a JSON object, like \'{{"key": "value"}}\'')
    return value


def key_values(pairs: list[str], what: str) -> dict[str, Any]:
    """KEY=VALUE pairs; a value that reads as JSON (a number, true, a list...) is taken
    as such, any other value as text: delimiter=';' is ';', row_group_size=1000 is 1000."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise usage_error(f"{what} {pair!r} is not KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        result[key.strip()] = value
    return result


def ids(values: list[str] | None, what: str) -> list[int]:
    """Ids given as repeated options, comma-separated, or both: --file 1,2 --file 3."""
    result = []
    for value in values or []:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                number = int(part)
            except ValueError:
                raise usage_error(f"{what} {part.strip()!r} is not an integer id") from None
            if number < 1:
                raise usage_error(f"{what} {number} is not a valid id")
            result.append(number)
    return result
