"""The public message contracts: the committed AsyncAPI document matches the code,
and the README's pika example runs as written against the real stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from support.broker import Principal
from support.stack import Stack, upload

ROOT = Path(__file__).resolve().parents[2]


def test_asyncapi_document_matches_the_contracts() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "asyncapi.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text()
    assert generated == committed, "docs/asyncapi.yaml is stale: run `make asyncapi`"
    doc = yaml.safe_load(committed)
    assert doc["asyncapi"].startswith("2.")
    for name in (
        "DataExportRequested",
        "HistoryExportRequested",
        "HistoryImportRequested",
        "ExtractionRequested",
        "ProvenanceRecorded",
        "TaskEvent",
    ):
        assert name in doc["components"]["messages"], name
        assert name in doc["components"]["schemas"], name
    for channel in doc["channels"].values():
        operation = channel.get("publish") or channel.get("subscribe")
        ref = operation["message"]["$ref"].rsplit("/", 1)[-1]
        assert ref in doc["components"]["messages"]
    assert doc["components"]["schemas"]["DataExportRequested"]["required"] == [
        "task_id",
        "owner_id",
        "name",
        "export_format",
    ]


def _run_readme_example(
    stack: Stack, principal: Principal, owner: int, file_id: int
) -> subprocess.CompletedProcess[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Publishing from another system", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    env = {
        **os.environ,
        "WAYBILL_AMQP_URL": principal.url,
        "WAYBILL_AMQP_PREFIX": stack.infra.prefix,
        "WAYBILL_OWNER_ID": str(owner),
        "WAYBILL_FILE_IDS": str(file_id),
    }
    return subprocess.run(
        [sys.executable, "-c", code.group(1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_readme_pika_example_runs(stack: Stack) -> None:
    """As written, by a service account that may act for the user: the export runs
    and the example follows it through its own events to the artifact."""
    with stack.new_user() as user:
        f = upload(user, "from-pika.txt", b"published by another system")
        owner = user.get("/api/users/me").json()["id"]
        _, principal = stack.service_account("readme", acts_for="users", user_ids=[owner])
        run = _run_readme_example(stack, principal, owner, f["id"])
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0].startswith("processing") and any(
            line.startswith("completed 100") for line in lines
        ), lines
        assert "exports/" in run.stdout  # the artifact's key
        jobs = user.get("/api/data-export/jobs").json()
        assert jobs[0]["name"] == "from pika" and jobs[0]["status"] == "completed"


def test_readme_pika_example_hears_its_refusal(stack: Stack) -> None:
    """The same example by a principal that may act for itself only, for another user:
    it hears of the refusal on its own events, and the user has no job."""
    with stack.new_user() as user:
        f = upload(user, "not-for-them.txt", b"not theirs to export")
        owner = user.get("/api/users/me").json()["id"]
        _, principal = stack.service_account("readme-self", acts_for="self")
        run = _run_readme_example(stack, principal, owner, f["id"])
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[0] == "failed 0.0", run.stdout
        assert f"may not act for user {owner}" in run.stdout, run.stdout
        assert user.get("/api/data-export/jobs").json() == []
