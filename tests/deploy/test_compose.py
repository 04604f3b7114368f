"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): validate
the compose file against the compose specification's JSON schema (vendored in
check-jsonschema, offline), lint the Dockerfile with hadolint, and check what neither
can: every service is there, built from the one Dockerfile, pinned, restarted, and
waiting for healthy infrastructure."""

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
        assert svc["build"] == {"context": ".", "args": {"SERVICE": name}}
        assert svc["image"] == f"waybill/{name}:0.1.0"
        depends = svc["depends_on"]
        for infra in ("postgres", "rabbitmq", "minio"):
            assert depends[infra]["condition"] == "service_healthy", (name, infra)
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in svc
        env = svc["environment"]
        # Each logs in to the broker as itself, on Waybill's vhost.
        assert env["WAYBILL_AMQP_URL"] == f"amqp://waybill-{name}:waybill-dev@rabbitmq:5672/waybill"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://jaeger:")
        assert env["OTEL_SERVICE_NAME"] == name
    # The migration runs the tracker's image, built the same way.
    assert services["migrate"]["build"] == services["tracker"]["build"]
    assert services["migrate"]["image"] == services["tracker"]["image"]


def test_every_image_is_pinned_and_every_service_restarts() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, svc in services.items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", (name, image)
        one_shot = name in ("migrate", "createbucket")
        assert svc["restart"] == ("on-failure" if one_shot else "unless-stopped"), name


def test_minio_health_needs_no_curl() -> None:
    """The MinIO image ships no curl: its own client asks the server."""
    test = yaml.safe_load(COMPOSE.read_text())["services"]["minio"]["healthcheck"]["test"]
    assert test == ["CMD", "mc", "ready", "local"]


def test_one_dockerfile_builds_every_service_non_root_from_the_lock() -> None:
    assert not list((ROOT / "services").glob("*/Dockerfile"))
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG SERVICE" in text
    assert 'uv sync --frozen --no-dev --package "waybill-$SERVICE"' in text
    assert "USER 10001" in text


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_rabbitmq_loads_the_definitions() -> None:
    rabbit = yaml.safe_load(COMPOSE.read_text())["services"]["rabbitmq"]
    mounts = {
        v.split(":")[1]: ROOT / v.split(":")[0] for v in rabbit["volumes"] if v.startswith("./")
    }
    assert mounts["/etc/rabbitmq/definitions.json"].is_file()
    conf = mounts["/etc/rabbitmq/conf.d/20-waybill.conf"].read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert "RABBITMQ_DEFAULT_USER" not in rabbit.get("environment", {})
