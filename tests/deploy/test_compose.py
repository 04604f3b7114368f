"""docker-compose.yml cannot run here (no Docker engine): validate it against the
compose specification's JSON schema (vendored in check-jsonschema, offline) and check
what the schema cannot: every service is there, built from the repo root, and waits
for healthy infrastructure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("gateway", "export-worker", "extraction", "tracker")


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_wires_the_stack() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    for infra in ("postgres", "rabbitmq", "minio", "jaeger"):
        assert "healthcheck" in services[infra], infra
    assert services["rabbitmq"]["image"].endswith("-management")
    for name in SERVICES:
        svc = services[name]
        assert svc["build"] == {"context": ".", "dockerfile": f"services/{name}/Dockerfile"}
        assert (ROOT / svc["build"]["dockerfile"]).is_file()
        depends = svc["depends_on"]
        for infra in ("postgres", "rabbitmq", "minio"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in svc
        env = svc["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://jaeger:")
        assert env["OTEL_SERVICE_NAME"] == name


def test_dockerfiles_run_as_non_root_from_the_lock() -> None:
    for name in SERVICES:
        text = (ROOT / "services" / name / "Dockerfile").read_text()
        assert "uv sync --frozen --no-dev" in text
        assert "USER 10001" in text
