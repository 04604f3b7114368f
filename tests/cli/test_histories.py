"""waybill history export/import and waybill extract against the real stack."""

from __future__ import annotations

import json
import tomllib
import zipfile
from typing import Any

import yaml

from support.cli import Waybill
from support.provenance import Recorder
from support.stack import Stack


def recorder(stack: Stack, waybill: Waybill) -> Recorder:
    """Provenance is recorded by the platform (the HTTP API), not typed by people."""
    return Recorder(stack.client(tomllib.loads(waybill.config_file.read_text())["api_key"]))


def cat_history(rec: Recorder, name: str = "cat") -> dict[str, Any]:
    h = rec.history(name)
    a = rec.dataset(h, b"alpha\n", "a.txt")
    b = rec.dataset(h, b"beta\n", "b.txt")
    run = rec.run(
        h, "cat1", {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])}, ["out_file1"]
    )
    return {"history": h, "a": a, "b": b, "job": run["jobs"][0]["id"]}


def test_history_export_save_and_reimport(stack: Stack, waybill: Waybill) -> None:
    built = cat_history(recorder(stack, waybill))
    h = built["history"]
    exported = waybill(
        "history", "export", str(h), "--format", "rocrate.zip", "--save", "archives/", "--json"
    )
    assert exported.code == 0, exported.stderr
    data = exported.json()
    assert data["state"] == "SUCCESS" and data["history_id"] == h
    with zipfile.ZipFile(waybill.cwd / data["path"]) as archive:
        assert "ro-crate-metadata.json" in archive.namelist()

    records = waybill("history", "exports", str(h), "--json")
    assert records.code == 0
    (record,) = records.json()
    assert record["ready"] and record["up_to_date"] and record["task_uuid"] == data["task_id"]

    imported = waybill("history", "import", data["task_id"], "--wait", "--json")
    assert imported.code == 0, imported.stderr
    new_history = imported.json()["history_id"]
    assert imported.json()["state"] == "SUCCESS" and new_history != h

    def names(history_id: int) -> list[tuple[int, str]]:
        contents = waybill("history", "contents", str(history_id), "--json")
        assert contents.code == 0, contents.stderr
        return [(c["hid"], c["name"]) for c in contents.json()]

    assert names(new_history) == names(h) == [(1, "a.txt"), (2, "b.txt"), (3, "cat1 out_file1")]

    unknown = waybill("history", "import", "no-such-export", "--wait")
    assert unknown.code == 1 and "no completed export" in unknown.error_line


def test_extract_saves_a_galaxy_workflow(stack: Stack, waybill: Waybill) -> None:
    rec = recorder(stack, waybill)
    built = cat_history(rec)
    # Everything the history's summary lists, as Galaxy's form starts.
    whole = waybill("extract", "--history", str(built["history"]), "--save", "cat.ga", "--json")
    assert whole.code == 0, whole.stderr
    assert whole.json()["format"] == "ga"
    document = json.loads((waybill.cwd / "cat.ga").read_text())
    assert document["a_galaxy_workflow"] == "true" and document["format-version"] == "0.1"
    steps = sorted(document["steps"].values(), key=lambda s: s["id"])
    assert [s["type"] for s in steps] == ["data_input", "data_input", "tool"]
    assert steps[2]["tool_id"] == "cat1"

    # Chosen by id, with names for the inputs, from two histories, as gxformat2.
    other = rec.history("copies")
    copy = rec.content(other, {"src": "hda", "id": built["b"]["id"]})
    chosen = waybill(
        "extract", "--job", str(built["job"]), "--hda", f"{built['a']['id']},{copy['id']}",
        "--input-name", "first", "--input-name", "second", "--name", "two histories",
        "--save", "cat.gxwf.yml", "--json",
    )  # fmt: skip
    assert chosen.code == 0, chosen.stderr
    assert chosen.json()["format"] == "format2"
    workflow = yaml.safe_load((waybill.cwd / "cat.gxwf.yml").read_text())
    assert workflow["class"] == "GalaxyWorkflow" and workflow["label"] == "two histories"
    assert set(workflow["inputs"]) == {"first", "second"}

    again = waybill("workflow", "download", str(chosen.json()["workflow_id"]), "-o", "cat.gxwf.yml")
    assert again.code == 1 and "--force" in again.error_line
    refused = waybill(
        "extract", "--job", str(built["job"]), "--input-name", "x", "--input-name", "x"
    )
    assert refused.code == 2 and "invalid request" in refused.error_line
    assert waybill("extract").code == 2
