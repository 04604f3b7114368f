"""keys create/list/revoke: the caller's API keys; usage: what the caller stores and
runs, against the quotas."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from waybill_cli.common import JsonOpt, connect
from waybill_cli.display import Output, human_size, when
from waybill_cli.errors import usage_error

keys_app = typer.Typer(
    help="Your API keys: several named keys, each shown once, revoked one by one.",
    no_args_is_help=True,
)

KEY_COLUMNS = ("id", "name", "prefix", "created", "expires", "last used")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def key_row(k: dict[str, Any]) -> list[Any]:
    return [
        k["id"],
        k["name"],
        k["prefix"],
        when(k["created_at"]),
        when(k.get("expires_at")) or "never",
        when(k.get("last_used_at")),
    ]


def expiry(expires_in: str | None, expires_at: str | None) -> str | None:
    """An ISO 8601 time with a zone, from --expires-in (30d, 12h, 90m) or --expires-at."""
    if expires_in is not None and expires_at is not None:
        raise usage_error("give --expires-in or --expires-at, not both")
    if expires_in is not None:
        match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", expires_in)
        if not match:
            raise usage_error(f"--expires-in {expires_in!r} is not like 30d, 12h or 90m")
        delta = timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
        return (datetime.now(UTC) + delta).isoformat()
    if expires_at is not None:
        try:
            moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError as e:
            raise usage_error(f"--expires-at {expires_at!r} is not an ISO 8601 time") from e
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()
    return None


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="A name, unique among your keys (e.g. laptop).")],
    expires_in: Annotated[
        str | None, typer.Option(help="Expire after this long: 90m, 12h, 30d.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option(help="Expire at this time (ISO 8601; UTC unless it says).")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Make a new API key. It is printed this once: store it now.

    `waybill keys create ci --expires-in 30d`"""
    out = Output(json_mode=json_mode)
    with connect() as api:
        created = api.create_key(name, expiry(expires_in, expires_at))

    def human() -> None:
        out.say(created["key"])
        out.note(
            f"key {created['id']} ({created['name']}); shown this once, "
            f"expires {when(created.get('expires_at')) or 'never'}"
        )

    out.result(created, human)


@keys_app.command("list")
def list_keys(json_mode: JsonOpt = False) -> None:
    """List your keys (never the keys themselves: their first characters)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        keys = api.keys()
    out.result(keys, lambda: out.table(KEY_COLUMNS, map(key_row, keys)))


@keys_app.command("revoke")
def revoke_key(key_id: int, json_mode: JsonOpt = False) -> None:
    """Revoke one of your keys: refused everywhere within a second."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        api.revoke_key(key_id)
    out.result({"revoked": key_id}, lambda: out.say(f"key {key_id} revoked"))


def usage(json_mode: JsonOpt = False) -> None:
    """What you store and run, against your quotas."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        used = api.usage()

    def limit(value: int | None, show: Any = str) -> str:
        return "none" if value is None else show(value)

    def human() -> None:
        stored, running = used["stored_bytes"], used["running_exports"]
        out.table(
            ("quota", "used", "limit"),
            [
                ["stored bytes", human_size(stored["used"]), limit(stored["limit"], human_size)],
                ["running exports", running["used"], limit(running["limit"])],
                ["files per export", "", limit(used["files_per_export"])],
            ],
        )

    out.result(used, human)
