"""The shape the README's Layout section claims, checked: every service has the same
parts, and transport stays in the handlers (no other module of a service imports the
AMQP client)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("gateway", "export-worker", "extraction", "tracker")
TRANSPORT = ("aio_pika", "aiormq", "pika")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def service_package(service: str) -> Path:
    (package,) = (ROOT / "services" / service / "src").glob("waybill_*")
    return package


def test_only_handlers_import_the_amqp_client() -> None:
    importing = sorted(
        str(path.relative_to(ROOT))
        for service in SERVICES
        for path in service_package(service).rglob("*.py")
        if imported(path) & set(TRANSPORT)
    )
    assert importing == [
        "services/export-worker/src/waybill_export_worker/handlers.py",
        "services/extraction/src/waybill_extraction/handlers.py",
        "services/tracker/src/waybill_tracker/handlers.py",
    ]


def has(package: Path, *names: str) -> bool:
    return any((package / name).exists() for name in names)


def test_every_service_has_the_same_parts() -> None:
    missing = {
        service: [
            " or ".join(names)
            for names in (
                ("settings.py",),
                ("main.py",),
                ("handlers.py", "api"),
                ("service.py", "services"),
                ("repository.py", "repository"),
            )
            if not has(service_package(service), *names)
        ]
        for service in SERVICES
    }
    assert missing == {service: [] for service in SERVICES}
