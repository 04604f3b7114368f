"""login, logout, whoami: the gateway's URL and the API key."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from waybill_cli import config
from waybill_cli.client import Api
from waybill_cli.common import JsonOpt
from waybill_cli.display import Output
from waybill_cli.errors import usage_error


def login(
    url: Annotated[
        str | None,
        typer.Option(help="The gateway, e.g. http://127.0.0.1:8000 (default: the current one)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="The API key. Without it the key is asked for (hidden), or read from stdin "
            "when stdin is not a terminal: `waybill login < key.txt`."
        ),
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Check a URL and API key against the gateway and store both in
    $XDG_CONFIG_HOME/waybill/config.toml (~/.config/waybill/config.toml; mode 0600).
    WAYBILL_URL and WAYBILL_API_KEY, when set, override the file."""
    out = Output(json_mode=json_mode)
    url = (url or config.load().url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise usage_error(f"--url {url!r} must start with http:// or https://")
    if key is None:
        key = (
            typer.prompt("API key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
        )
    key = key.strip()
    if not key:
        raise usage_error("no API key given")
    api = Api(url, key)
    try:
        user = api.me()
    finally:
        api.close()
    path = config.save(url=url, api_key=key)
    out.result(
        {"url": url, "user": user, "config": str(path)},
        lambda: out.say(f"logged in to {url} as {user['name']}; saved in {path}"),
    )


def logout(json_mode: JsonOpt = False) -> None:
    """Forget the stored API key (the URL stays)."""
    out = Output(json_mode=json_mode)
    current = config.load()
    stored = config.read_file(current.path)
    path = config.save(url=stored.get("url", config.DEFAULT_URL), api_key=None)
    out.result({"config": str(path)}, lambda: out.say(f"the API key is removed from {path}"))


def whoami(json_mode: JsonOpt = False) -> None:
    """Who the current key belongs to, and where the URL and key come from."""
    out = Output(json_mode=json_mode)
    current = config.load()
    api = Api.from_config(current)
    try:
        user = api.me()
    finally:
        api.close()
    data = {
        "url": current.url,
        "url_from": current.url_source,
        "key_from": current.key_source,
        "config": str(current.path),
        "user": user,
    }

    def human() -> None:
        role = " (admin)" if user.get("is_admin") else ""
        out.say(f"{user['name']}{role} on {current.url}")
        out.say(f"the URL from: {current.url_source}; the key from: {current.key_source}")

    out.result(data, human)
