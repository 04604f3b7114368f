"""Where the CLI finds the gateway and its key: `waybill login` writes them to
$XDG_CONFIG_HOME/waybill/config.toml (~/.config/waybill/config.toml by default, mode
0600); WAYBILL_URL and WAYBILL_API_KEY override the file."""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from waybill_cli.errors import CliError, ExitCode

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "WAYBILL_URL"
KEY_ENV = "WAYBILL_API_KEY"


@dataclass(frozen=True)
class Config:
    url: str
    api_key: str | None
    path: Path
    # Where each value came from ("environment", "config file" or "default"), for whoami.
    url_source: str
    key_source: str | None


def config_path() -> Path:
    # The XDG spec: an unset, empty or relative XDG_CONFIG_HOME means ~/.config.
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "waybill" / "config.toml"


def read_file(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}", ExitCode.USAGE) from e
    return {k: v for k, v in data.items() if k in ("url", "api_key") and isinstance(v, str)}


def load() -> Config:
    path = config_path()
    stored = read_file(path)
    env_url, env_key = os.environ.get(URL_ENV), os.environ.get(KEY_ENV)
    if env_url:
        url, url_source = env_url, "environment"
    elif "url" in stored:
        url, url_source = stored["url"], "config file"
    else:
        url, url_source = DEFAULT_URL, "default"
    key, key_source = (
        (env_key, "environment")
        if env_key
        else (stored["api_key"], "config file")
        if "api_key" in stored
        else (None, None)
    )
    return Config(
        url=url.rstrip("/"), api_key=key, path=path, url_source=url_source, key_source=key_source
    )


def save(*, url: str, api_key: str | None) -> Path:
    """Replace the file atomically; it holds a secret, so only its owner may read it."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"url": url} | ({"api_key": api_key} if api_key else {})
    # mkstemp creates the file with mode 0600, before the secret is written to it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
