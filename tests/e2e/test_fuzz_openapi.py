"""schemathesis over the gateway's whole OpenAPI document, as an authenticated user:
no 5xx, every status code and response body as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.stack import Stack


@pytest.mark.slow
def test_openapi_fuzzing_finds_no_server_errors(stack: Stack) -> None:
    with stack.new_user() as user:
        key = user.headers["Authorization"].split(" ", 1)[1]
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{stack.gateway_url}/openapi.json",
            "-H",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "8",
            "--workers",
            "2",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    print(summary.group(0) if summary else run.stdout[-2000:])
    assert run.returncode == 0, run.stdout[-4000:]
    assert summary and int(summary.group(1)) > 500 and summary.group(1) == summary.group(2)
