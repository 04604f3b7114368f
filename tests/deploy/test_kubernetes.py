"""The Kubernetes manifests: every overlay renders with `kubectl kustomize`, every
built-in resource validates strictly against the Kubernetes schema
(`kubernetes-validate --strict`, offline), and the properties a deployment relies on
hold: probes, non-root, a disruption budget and a token-less account per service,
network policies that let in only the gateway and let out only to the backing parts,
queue scaling for both consumers, pinned images, a migration Job per release. KEDA's
CRDs are not in those schemas: their shape is asserted here."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "overlays" / "dev" / "rabbitmq" / "definitions.json"
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
        refs = [ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref]
        # The shared secrets, then the service's own broker login (dev: name-hash suffixed).
        assert [r.rsplit("-", 1)[0] if overlay == "dev" else r for r in refs] == [
            "waybill-secrets",
            f"waybill-amqp-{name}",
        ], refs
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
    assert ("HorizontalPodAutoscaler", "extraction") in names


def test_each_dev_service_logs_in_to_the_broker_as_itself() -> None:
    """Its own Secret, its own AMQP user on Waybill's vhost; the broker gets the users
    and their permissions from the definitions `make definitions` writes."""
    docs = render("dev")
    secrets = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "Secret"}
    for name in SERVICES:
        url = base64.b64decode(secrets[f"waybill-amqp-{name}"]["data"]["WAYBILL_AMQP_URL"]).decode()
        assert url == f"amqp://waybill-{name}:waybill-dev@rabbitmq:5672/waybill"
    assert "WAYBILL_AMQP_URL" not in secrets["waybill-secrets"]["data"]
    definitions = json.loads(
        base64.b64decode(secrets["rabbitmq-definitions"]["data"]["definitions.json"])
    )
    assert definitions == json.loads(DEFINITIONS.read_text())
    rabbit = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rabbitmq"
    )
    mounts = {
        m["mountPath"] for m in rabbit["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert {"/etc/rabbitmq/definitions.json", "/etc/rabbitmq/conf.d/20-waybill.conf"} <= mounts


def test_the_dev_definitions_are_those_the_code_makes() -> None:
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "waybill_shared.messaging.definitions",
            "--administrator",
            "waybill-admin",
        ],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated == DEFINITIONS.read_text(), "stale: run `make definitions`"
    document = json.loads(generated)
    assert {u["name"] for u in document["users"]} == {f"waybill-{s}" for s in SERVICES} | {
        "waybill-admin"
    }


def test_prod_scales_the_queue_consumers_on_queue_length_with_keda() -> None:
    docs = render("prod")
    kinds = {d["kind"] for d in docs}
    assert "Secret" not in kinds and "HorizontalPodAutoscaler" not in kinds  # KEDA owns the HPA
    assert not {"rabbitmq", "postgres", "minio", "jaeger"} & {d["metadata"]["name"] for d in docs}
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    auths = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
    queues = {
        "export-worker": "waybill.export.requests",
        "extraction": "waybill.extraction.requests",
    }
    assert set(scaled) == set(queues)
    for target, queue in queues.items():
        assert scaled[target]["apiVersion"] == "keda.sh/v1alpha1"
        triggers = {t["type"]: t for t in scaled[target]["spec"]["triggers"]}
        assert triggers["rabbitmq"]["metadata"]["queueName"] == queue
        assert triggers["rabbitmq"]["metadata"]["mode"] == "QueueLength"
        assert triggers["cpu"]["metadata"]["value"]
        # KEDA looks at the queue with the login of the worker that consumes it.
        (secret,) = auths[triggers["rabbitmq"]["authenticationRef"]["name"]]["spec"][
            "secretTargetRef"
        ]
        assert (secret["name"], secret["key"]) == (f"waybill-amqp-{target}", "WAYBILL_AMQP_URL")
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert all(image.endswith(":0.1.0") for image in images)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_image_floats(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                name = container["image"].rsplit("/", 1)[-1]
                assert ":" in name and not name.endswith(":latest"), container["image"]


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod templates of the services and of the migration, by app name."""
    pods: dict[str, dict[str, Any]] = {}
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            labels = d["spec"]["template"].get("metadata", {}).get("labels", {})
            if labels.get("app.kubernetes.io/name") in (*SERVICES, "waybill-migrate"):
                pods[labels["app.kubernetes.io/name"]] = d
    return pods


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_service_has_a_pdb_an_account_without_token_and_a_startup_probe(
    overlay: str,
) -> None:
    docs = render(overlay)
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for name, workload in _pods(docs).items():
        pod = workload["spec"]["template"]
        account = pod["spec"]["serviceAccountName"]
        assert accounts[account]["automountServiceAccountToken"] is False, name
        assert pod["spec"]["automountServiceAccountToken"] is False, name
        if workload["kind"] != "Deployment":
            continue
        assert account == name  # one account per service, shared by none
        covering = [p for p in pdbs if _selects(p["spec"]["selector"], pod["metadata"]["labels"])]
        assert len(covering) == 1, name
        assert covering[0]["spec"]["maxUnavailable"] == 1  # drains proceed, one pod at a time
        (container,) = pod["spec"]["containers"]
        startup = container["startupProbe"]
        assert startup["httpGet"]["path"] == "/livez"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
        assert "initialDelaySeconds" not in container["livenessProbe"]


def _policies(docs: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and _selects(d["spec"]["podSelector"], labels)
    ]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_network_policies_let_in_only_the_gateway_and_out_only_to_the_backing_parts(
    overlay: str,
) -> None:
    docs = render(overlay)
    backing = {5432: "postgres", 5672: "rabbitmq", 9000: "minio", 4318: "jaeger"}
    for name, workload in _pods(docs).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        policies = _policies(docs, labels)
        # Selected for both directions: whatever no rule allows is denied.
        types = {t for p in policies for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, name
        ingress = [rule for p in policies for rule in p["spec"].get("ingress", [])]
        if name == "gateway":
            assert ingress == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
        else:
            assert ingress == [], name
        egress = [rule for p in policies for rule in p["spec"].get("egress", [])]
        ports = {port["port"] for rule in egress for port in rule["ports"]}
        wanted = {53, 5432} if name == "waybill-migrate" else {53, *backing}
        assert ports == wanted, name
        assert all(rule["ports"] for rule in egress), "every egress rule names its ports"
        for rule in egress:
            port = rule["ports"][0]["port"]
            if port == 53:
                (dns,) = rule["to"]
                assert dns["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
            elif overlay == "dev":  # the infrastructure runs beside the services
                assert rule["to"] == [
                    {"podSelector": {"matchLabels": {"app.kubernetes.io/name": backing[port]}}}
                ]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_migration_job_is_named_after_its_release(overlay: str) -> None:
    (job,) = [
        d for d in render(overlay) if d["kind"] == "Job" and "migrate" in d["metadata"]["name"]
    ]
    tag = job["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
    assert job["metadata"]["name"] == f"waybill-migrate-{tag}"


def test_a_new_release_makes_a_new_migration_job(tmp_path: Path) -> None:
    """A Job's template is immutable: re-applying after a tag change must not meet the
    old Job. The prod overlay, copied with another tag, renders another Job name."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    overlay = tmp_path / "deploy" / "overlays" / "prod"
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace('newTag: "0.1.0"', 'newTag: "0.2.0-rc.1"')
    )
    out = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(out) if d and d["kind"] == "Job"}
    assert names == {"waybill-migrate-0.2.0-rc.1"}
