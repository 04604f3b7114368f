"""The `waybill` console script, run as a user runs it: a process with its own home
and config directory, against the session's real gateway."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.stack import ADMIN_KEY, Stack

WAYBILL = Path(sys.executable).parent / "waybill"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_line(self) -> str:
        """The one line an error prints on stderr (and proof there is only one)."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        return lines[0]


class Waybill:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.cwd = home / "work"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WAYBILL_")}
        self.env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "waybill" / "config.toml"

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 120, **env: str
    ) -> Result:
        done = subprocess.run(
            [str(WAYBILL), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env | env,
            cwd=self.cwd,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(WAYBILL), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )


def new_key(stack: Stack) -> str:
    with stack.client(ADMIN_KEY) as admin:
        response = admin.post("/api/users", json={"name": f"cli-{uuid.uuid4().hex[:8]}"})
        response.raise_for_status()
        return str(response.json()["api_key"])


def run_on_terminal(cli: Waybill, *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Runs waybill with stderr on a pseudo-terminal (as a person at a terminal sees its
    progress) and stdout on a pipe; returns the exit code, stdout and what the terminal
    received."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(WAYBILL), *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        env=cli.env | {"COLUMNS": "120", "TERM": "xterm"},
        cwd=cli.cwd,
    )
    os.close(terminal)
    received: list[bytes] = []

    def drain() -> None:  # keep reading, or the child blocks on a full terminal
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=timeout)
    reader.join(10)
    os.close(controller)
    return process.returncode, stdout, b"".join(received).decode(errors="replace")
