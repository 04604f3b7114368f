"""rocrate.zip is an RO-Crate 1.1 that follows the Process Run Crate profile, as the
standard tools see it: the rocrate package loads it, roc-validator finds no issue at
REQUIRED severity (offline), and the jobs are CreateActions wired to the right entities."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import rocrate
from rocrate.rocrate import ROCrate
from rocrate_validator import services
from rocrate_validator.models import Severity, ValidationSettings

from waybill_export_worker.history_archive import write_archive

PROFILES = ("ro-crate-1.1", "process-run-crate-0.5")


@pytest.fixture(autouse=True)
def offline_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network here: the validator gets the RO-Crate 1.1 JSON-LD context from the copy
    the rocrate package ships instead of from w3id.org (any other URL still fails)."""
    from rocrate_validator.utils import document_loader

    shipped = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_text())
    original = document_loader._fetch_json_ld

    def fetch(url: str) -> object:
        if url.startswith("https://w3id.org/ro/crate/1.1/"):
            return shipped
        return original(url)

    monkeypatch.setattr(document_loader, "_fetch_json_ld", fetch)


def issues(crate: Path, profile: str, severity: Severity = Severity.REQUIRED) -> list[str]:
    result = services.validate(
        ValidationSettings(
            rocrate_uri=str(crate),
            profile_identifier=profile,
            requirement_severity=severity,
            offline=True,
            # The only two checks that need the network: that the context URL answers.
            # Every other check runs, with the context from the shipped copy.
            skip_checks=["ro-crate-1.1_3.1", "ro-crate-1.1_3.2"],
        )
    )
    return [f"{i.check.identifier}: {i.message}" for i in result.get_issues(severity)]


def export(tmp_path: Path, built: Any, name: str = "history.rocrate.zip") -> tuple[Path, Path]:
    target = tmp_path / name
    write_archive(built.snapshot, fmt="rocrate.zip", target=target, dataset_file=built.dataset_file)
    crate_dir = tmp_path / (name + ".d")
    with zipfile.ZipFile(target) as z:
        z.extractall(crate_dir)
    return target, crate_dir


def test_the_validator_is_not_vacuous(tmp_path: Path) -> None:
    """A crate without what the profiles require is reported: the check can fail."""
    (tmp_path / "ro-crate-metadata.json").write_text(
        json.dumps(
            {
                "@context": "https://w3id.org/ro/crate/1.1/context",
                "@graph": [
                    {
                        "@id": "ro-crate-metadata.json",
                        "@type": "CreativeWork",
                        "about": {"@id": "./"},
                    },
                    {"@id": "./", "@type": "Dataset"},
                    {"@id": "#job", "@type": "CreateAction", "name": "no instrument"},
                ],
            }
        )
    )
    assert issues(tmp_path, "ro-crate-1.1")
    assert any("instrument" in i for i in issues(tmp_path, "process-run-crate-0.5"))


@pytest.mark.parametrize("include_files", [True, False])
def test_valid_ro_crate_1_1_and_process_run_crate(
    tmp_path: Path, builder: Any, include_files: bool
) -> None:
    _, crate_dir = export(tmp_path, builder(include_files=include_files))
    for profile in PROFILES:
        found = issues(crate_dir, profile)
        assert not found, (profile, found)


def test_jobs_are_create_actions_wired_to_their_tools_inputs_and_outputs(
    tmp_path: Path, built: Any
) -> None:
    target, crate_dir = export(tmp_path, built)
    for source in (crate_dir, target):  # the rocrate package reads the zip itself too
        crate = ROCrate(source)
        by_id = {e.id: e for e in crate.get_entities()}
        root = crate.root_dataset
        assert root["conformsTo"].id == "https://w3id.org/ro/wfrun/process/0.5"
        assert root["name"] == "RNA-seq \u00e9 run"
        assert root["datePublished"] == "2026-11-24T12:00:05+00:00"

        files = {e.id: e for e in crate.get_entities() if e.type == "File"}
        member = {int(i.split("/")[1].split("_")[0]): i for i in files if i.startswith("datasets/")}
        assert sorted(member) == [101, 102, 103, 104, 105, 106]
        assert "waybill-history.json" in files
        bam = files[member[105]]
        assert bam["encodingFormat"] == "application/octet-stream"
        assert bam["contentSize"] == str(built.files[105].stat().st_size)
        assert bam["sha256"] == built.snapshot.datasets[4].file.sha256
        assert (bam["waybill:hid"], bam["waybill:extension"]) == (5, "bam")
        assert files[member[102]]["waybill:visible"] is False
        assert files[member[104]]["waybill:deleted"] is True
        assert files[member[106]]["waybill:copiedFrom"] == 101

        actions = {e.id: e for e in crate.get_entities() if e.type == "CreateAction"}
        assert sorted(actions) == ["#job-201", "#job-202"]
        cat = actions["#job-201"]
        tool = cat["instrument"]
        assert tool.type == "SoftwareApplication"
        assert tool["name"] == "toolshed.g2.bx.psu.edu/repos/devteam/cat/cat1/1.0.0"
        assert tool["softwareVersion"] == "1.0.0"
        # hda input, and a dce input resolved to the element's dataset
        assert sorted(o.id for o in cat["object"]) == [member[101], member[102]]
        assert cat["result"].id == member[103]
        assert cat["startTime"] == "2026-11-24T12:00:05+00:00"
        assert cat["actionStatus"] == "http://schema.org/CompletedActionStatus"
        assert cat["agent"]["name"] == "alice"

        mapped = actions["#job-202"]
        assert mapped["actionStatus"] == "http://schema.org/FailedActionStatus"
        assert [o.id for o in mapped["object"]] == ["#collection-300", "#element-402", "#dataset-9"]
        assert [r.id for r in mapped["result"]] == [member[105], "#collection-301"]
        assert by_id["#dataset-9"]["name"] == "dataset 9 (not part of this export)"

        pair = by_id["#collection-300"]
        assert "Dataset" in pair.type
        assert [p.id for p in pair["hasPart"]] == [member[101], member[102]]
        nested = by_id["#collection-301"]
        assert [p.id for p in nested["hasPart"]] == ["#element-402", "#element-405"]
        assert nested["waybill:collectionType"] == "list:paired"
        assert [p.id for p in by_id["#element-402"]["hasPart"]] == [member[103], member[106]]
        mentioned = {m.id for m in root["mentions"]}
        assert {"#job-201", "#job-202", "#collection-300", "#collection-301"} <= mentioned


def test_every_reference_in_the_crate_is_an_entity(tmp_path: Path, built: Any) -> None:
    _, crate_dir = export(tmp_path, built)
    metadata = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    assert metadata["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    ids = {e["@id"] for e in metadata["@graph"]}
    external = ("https://w3id.org/ro/crate/1.1",)

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            if set(value) == {"@id"}:
                return [value["@id"]]
            return [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    dangling = {r for e in metadata["@graph"] for r in refs(e)} - ids - set(external)
    assert not dangling
    for entity in metadata["@graph"]:
        if entity.get("@type") == "File":
            assert (crate_dir / entity["@id"]).is_file()
