"""rocrate.zip is an RO-Crate 1.1 that follows the Process Run Crate profile (and the
Workflow Run Crate profile when the history holds extracted workflows), as the standard
tools see it: the rocrate package loads it, roc-validator finds no issue at REQUIRED
severity with every check running (the RO-Crate 1.1 context served from a vendored
copy), every term is defined by the context, and the jobs are CreateActions wired to
the right entities."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph
from rocrate.rocrate import ROCrate

from support.rocrate_validation import CONTEXTS, issues
from waybill_export_worker.history_archive import write_archive
from waybill_export_worker.history_archive.model import WorkflowRecord

PROFILES = ("ro-crate-1.1", "process-run-crate-0.5")
WORKFLOW_PROFILES = (*PROFILES, "workflow-run-crate-0.5")


def export(
    tmp_path: Path, built: Any, name: str = "history.rocrate.zip", workflow: Path | None = None
) -> tuple[Path, Path]:
    target = tmp_path / name
    write_archive(
        built.snapshot,
        fmt="rocrate.zip",
        target=target,
        dataset_file=built.dataset_file,
        workflow_file=lambda _w: workflow,
    )
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


def test_the_context_checks_run(tmp_path: Path, built: Any) -> None:
    """The issue the seed's crate had: `sha256` with only the 1.1 context (which does not
    define it) is reported, now that the context is served instead of the checks skipped."""
    _, crate_dir = export(tmp_path, built)
    descriptor = crate_dir / "ro-crate-metadata.json"
    metadata = json.loads(descriptor.read_text())
    descriptor.write_text(json.dumps({**metadata, "@context": metadata["@context"][0]}))
    found = issues(crate_dir, "ro-crate-1.1")
    assert any('"sha256"' in i and "compacted" in i for i in found), found


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
        assert bam["identifier"] == "hid:5"
        assert files[member[106]]["isBasedOn"].id == member[101]  # a copy of dataset 101

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
        assert nested["isBasedOn"].id == "#collection-299"
        assert [p.id for p in by_id["#element-402"]["hasPart"]] == [member[103], member[106]]
        mentioned = {m.id for m in root["mentions"]}
        assert {"#job-201", "#job-202", "#collection-300", "#collection-301"} <= mentioned


def test_every_reference_in_the_crate_is_an_entity(tmp_path: Path, built: Any) -> None:
    _, crate_dir = export(tmp_path, built)
    metadata = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    assert metadata["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    ids = {e["@id"] for e in metadata["@graph"]}
    external = ("https://w3id.org/ro/crate/1.1", "https://galaxyproject.org/")

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


def test_every_term_is_defined_by_the_context(tmp_path: Path, built: Any) -> None:
    """Expanded with the vendored 1.1 context and the crate's own additions, every
    property and type is an IRI of a published vocabulary: none is dropped (an
    undefined term is), none is invented."""
    _, crate_dir = export(tmp_path, built, workflow=_workflow_file(tmp_path))
    metadata = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    context_uri, extra = metadata["@context"]
    assert extra == {"sha256": "http://schema.org/sha256"}
    context = json.loads(CONTEXTS[context_uri].read_text())["@context"]
    used = {key for entity in metadata["@graph"] for key in entity if not key.startswith("@")} | {
        kind
        for entity in metadata["@graph"]
        for kind in ([entity["@type"]] if isinstance(entity["@type"], str) else entity["@type"])
    }
    undefined = sorted(t for t in used if t not in context and t not in extra)
    assert not undefined, undefined
    document = {**metadata, "@context": [context, extra]}
    graph = Graph().parse(data=json.dumps(document), format="json-ld")
    vocabularies = ("http://schema.org/", "http://purl.org/dc/terms/", "https://bioschemas.org/")
    predicates = {str(p) for p in graph.predicates()}
    assert all(p.startswith(vocabularies) or p.endswith("#type") for p in predicates), predicates
    assert "http://schema.org/sha256" in predicates


def _workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "workflow.ga"
    path.write_text(json.dumps({"a_galaxy_workflow": "true", "format-version": "0.1", "steps": {}}))
    return path


def with_workflows(built: Any) -> Any:
    """The history holds two workflows extracted from it; the newer is the main one."""
    older = WorkflowRecord(
        id=7, name="first try", created_at=built.snapshot.exported_at - timedelta(days=1),
        hda_ids=(101,), job_ids=(),
    )  # fmt: skip
    newer = WorkflowRecord(
        id=9,
        name="cat then map",
        created_at=built.snapshot.exported_at,
        hda_ids=(101, 102),
        hdca_ids=(300,),
        job_ids=(202,),
        implicit_collection_jobs_ids=(500,),
    )
    return dataclasses.replace(
        built, snapshot=dataclasses.replace(built.snapshot, workflows=(older, newer))
    )


def test_a_history_with_an_extracted_workflow_is_a_workflow_run_crate(
    tmp_path: Path, built: Any
) -> None:
    target, crate_dir = export(tmp_path, with_workflows(built), workflow=_workflow_file(tmp_path))
    for profile in WORKFLOW_PROFILES:
        found = issues(crate_dir, profile)
        assert not found, (profile, found)
    crate = ROCrate(target)
    root = crate.root_dataset
    main = root["mainEntity"]
    assert main.id == "workflows/9_cat_then_map.ga"
    assert set(main.type) == {"File", "SoftwareSourceCode", "ComputationalWorkflow"}
    assert main["programmingLanguage"]["name"] == "Galaxy"
    assert {p.id for p in root["conformsTo"]} == {
        "https://w3id.org/ro/wfrun/process/0.5",
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
    }
    runs = {e.id: e for e in crate.get_entities() if e.id.startswith("#workflow-run-")}
    assert sorted(runs) == ["#workflow-run-7", "#workflow-run-9"]
    run = runs["#workflow-run-9"]
    assert run.type == "CreateAction" and run["instrument"].id == main.id
    files = {e.id for e in crate.get_entities() if e.type == "File"}
    member = {int(i.split("/")[1].split("_")[0]): i for i in files if i.startswith("datasets/")}
    assert [o.id for o in run["object"]] == [member[101], member[102], "#collection-300"]
    # Job 202's outputs, and what mapped run 500 made (the list:paired collection).
    assert [r.id for r in run["result"]] == [member[105], "#collection-301", "#collection-301"]
    with zipfile.ZipFile(target) as z:
        assert z.read(main.id) == _workflow_file(tmp_path).read_bytes()


def test_without_its_workflow_file_the_crate_is_a_process_run_crate(
    tmp_path: Path, built: Any
) -> None:
    """A workflow whose document could not be had is left out, and so is the claim."""
    target, crate_dir = export(tmp_path, with_workflows(built), workflow=None)
    root = ROCrate(target).root_dataset
    assert root["conformsTo"].id == "https://w3id.org/ro/wfrun/process/0.5"
    assert "mainEntity" not in root
    assert any("mainEntity" in i for i in issues(crate_dir, "workflow-run-crate-0.5"))
