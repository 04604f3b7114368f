"""The gateway checks extraction requests with the library in waybill_shared and
serves stored documents: it neither depends on nor loads the extraction service,
gxformat2 or YAML."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import waybill_gateway

NOT_IN_GATEWAY = ("waybill_extraction", "gxformat2", "yaml")


def test_the_gateway_package_does_not_depend_on_the_extraction_service() -> None:
    requires = metadata.requires("waybill-gateway") or []
    assert not [r for r in requires if r.startswith("waybill-extraction")], requires


def test_no_gateway_module_imports_the_extraction_service() -> None:
    importing: list[str] = []
    for path in Path(waybill_gateway.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            importing += [f"{path.name}: {n}" for n in names if n.split(".")[0] in NOT_IN_GATEWAY]
    assert importing == []


def test_the_running_gateway_loads_neither_extraction_service_nor_gxformat2() -> None:
    # A fresh interpreter: this test process has loaded the extraction service already.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, waybill_gateway.main\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    top_level = set(json.loads(loaded.stdout))
    assert "waybill_gateway" in top_level
    assert top_level.isdisjoint(NOT_IN_GATEWAY), top_level & set(NOT_IN_GATEWAY)
