"""The Kubernetes manifests: every overlay renders with `kubectl kustomize`, every
built-in resource validates strictly against the Kubernetes schema
(`kubernetes-validate --strict`, offline), and the properties a deployment relies on
hold. KEDA's CRDs are not in those schemas: their shape is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("gateway", "export-worker", "extraction", "tracker")
DRAIN_SECONDS = 30


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(ROOT / "deploy" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlay_validates_strictly(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    builtin = [d for d in docs if not d["apiVersion"].startswith("keda.sh/")]
    paths = []
    for i, doc in enumerate(builtin):
        path = tmp_path / f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(str(path))
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", *paths],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_deployments_are_safe_and_probed(overlay: str) -> None:
    docs = render(overlay)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("waybill-config")
    )
    assert int(config["data"]["WAYBILL_SHUTDOWN_GRACE_SECONDS"]) == DRAIN_SECONDS
    for name in SERVICES:
        spec = deployments[name]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > DRAIN_SECONDS
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
        refs = {ref.get("secretRef", {}).get("name") for ref in container["envFrom"]} - {None}
        assert len(refs) == 1 and refs.pop().startswith(
            "waybill-secrets"
        )  # dev: name-hash suffixed
    jobs = [d for d in docs if d["kind"] == "Job" and "migrate" in d["metadata"]["name"]]
    assert (
        jobs
        and jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        == "waybill_shared.db.migrate"
    )


def test_dev_overlay_brings_its_infrastructure_and_secret() -> None:
    docs = render("dev")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for infra in ("rabbitmq", "postgres", "minio", "jaeger"):
        assert ("Deployment", infra) in names and ("Service", infra) in names
    assert any(kind == "Secret" and name.startswith("waybill-secrets") for kind, name in names)
    assert ("HorizontalPodAutoscaler", "export-worker") in names


def test_prod_scales_the_worker_on_queue_length_with_keda() -> None:
    docs = render("prod")
    kinds = {d["kind"] for d in docs}
    assert "Secret" not in kinds and "HorizontalPodAutoscaler" not in kinds  # KEDA owns the HPA
    assert not {"rabbitmq", "postgres", "minio", "jaeger"} & {d["metadata"]["name"] for d in docs}
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "export-worker"
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert triggers["rabbitmq"]["metadata"]["queueName"] == "waybill.export.requests"
    assert triggers["rabbitmq"]["metadata"]["mode"] == "QueueLength"
    assert triggers["cpu"]["metadata"]["value"]
    auth = next(d for d in docs if d["kind"] == "TriggerAuthentication")
    assert triggers["rabbitmq"]["authenticationRef"]["name"] == auth["metadata"]["name"]
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert all(image.endswith(":0.1.0") for image in images)
