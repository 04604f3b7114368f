"""Saving a streamed answer to a local file: the name the server suggests (reduced to a
bare file name, so nothing is written outside the chosen directory), a .part file renamed
at the end (an interrupted download leaves no truncated file under the real name), and
no silent overwrite."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import httpx

from waybill_cli.errors import CliError, ExitCode

STDOUT = "-"
CHUNK = 1 << 20


def suggested_name(response: httpx.Response, fallback: str) -> str:
    """The filename of Content-Disposition (RFC 6266, filename* included), else fallback."""
    header = response.headers.get("content-disposition")
    name = None
    if header:
        message = Message()
        message["content-disposition"] = header
        name = message.get_filename()
    return safe_name(name or fallback)


def safe_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name.strip()
    return base if base not in ("", ".", "..") else "download"


def target(output: str | None, name: str) -> Path | None:
    """Where to save: None means stdout (-o -); a directory gets the suggested name."""
    if output == STDOUT:
        return None
    if output is None:
        return Path(name)
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return path / name
    return path


def save(
    response: httpx.Response,
    path: Path | None,
    *,
    force: bool,
    on_bytes: Callable[[int], None],
) -> int:
    """Streams the body to path (or stdout); returns the number of bytes written."""
    written = 0
    if path is None:
        for chunk in response.iter_bytes(CHUNK):
            sys.stdout.buffer.write(chunk)
            written += len(chunk)
        sys.stdout.buffer.flush()
        return written
    if path.exists() and not force:
        raise CliError(f"{path} exists: --force overwrites it", ExitCode.FAILED)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as f:
            for chunk in response.iter_bytes(CHUNK):
                f.write(chunk)
                written += len(chunk)
                on_bytes(len(chunk))
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return written
