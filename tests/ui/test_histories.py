"""The Histories page (contents, the export panel, earlier exports, re-import) and the
Extraction page (a checklist over two histories, submit, download the .ga)."""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path

from playwright.sync_api import expect

from support.browser import Person
from support.provenance import Recorder
from support.stack import Stack, wait_for


def test_export_a_history_download_it_and_reimport_it(person: Person, stack: Stack) -> None:
    recorder = Recorder(person.api)
    history = recorder.history("liver RNA-seq")
    reads = recorder.dataset(history, b"ACGT\n", name="reads.fq")
    recorder.run(history, "cat1", {"input1": ("hda", reads["id"])}, ["out_file1"])
    recorder.paired(history)

    page = person.page
    page.get_by_role("link", name="Histories").click()
    page.get_by_role("button", name="liver RNA-seq").click()
    contents = page.get_by_test_id("contents")
    expect(contents).to_contain_text("reads.fq")
    expect(contents).to_contain_text("collection · paired")
    expect(page.get_by_test_id("jobs")).to_contain_text("cat1")

    panel = page.get_by_test_id("export-panel")
    offered = (
        panel.get_by_label("Format", exact=True)
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    schema = person.api.get("/openapi.json").json()["components"]["schemas"]
    assert offered == schema["HistoryExportOptions"]["properties"]["model_store_format"]["enum"]
    panel.get_by_label("Format", exact=True).select_option("tar.gz")
    with page.expect_download(timeout=60_000) as first:
        panel.get_by_test_id("prepare-download").click()
    with tarfile.open(first.value.path(), "r:gz") as archive:
        assert any(name.endswith(".fq") or "datasets" in name for name in archive.getnames())
    expect(panel.get_by_test_id("running")).to_contain_text("SUCCESS")

    # The same, unchanged history with the same options: the export is reused.
    with page.expect_download():
        panel.get_by_test_id("prepare-download").click()
    expect(panel.get_by_test_id("running")).to_contain_text("reused")

    earlier = page.get_by_test_id("exports")
    row = earlier.locator("tr", has_text="tar.gz").first
    expect(row).to_contain_text("ready")
    expect(row).to_contain_text("up to date")
    with page.expect_download() as again:
        row.get_by_role("button", name="Download again").click()
    assert Path(again.value.path()).read_bytes() == Path(first.value.path()).read_bytes()

    # Export to a remote location: outside the allowed prefixes is refused, readably.
    panel.get_by_label("Or write to a remote location").fill("s3://elsewhere/x.tar.gz")
    panel.get_by_role("button", name="Export there").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid request")
    page.get_by_role("alert").get_by_role("button", name="Dismiss the error").click()
    target = f"s3://{stack.infra.bucket}/remote/liver-{uuid.uuid4().hex[:6]}.tar.gz"
    panel.get_by_label("Or write to a remote location").fill(target)
    panel.get_by_role("button", name="Export there").click()
    expect(panel.get_by_test_id("running")).to_contain_text(
        f"Export to {target} · SUCCESS", timeout=60_000
    )
    expect(earlier).to_contain_text(target)

    row.get_by_role("button", name="Re-import").click()
    expect(panel.get_by_test_id("running")).to_contain_text("made history #", timeout=60_000)
    text = panel.get_by_test_id("running").inner_text()
    new_id = int(text.split("made history #")[1].split()[0])
    imported = person.api.get(f"/api/histories/{new_id}/contents").json()
    original = person.api.get(f"/api/histories/{history}/contents").json()
    assert [(i["hid"], i["name"]) for i in imported] == [(i["hid"], i["name"]) for i in original]


def test_extract_a_workflow_from_two_histories_and_download_the_ga(person: Person) -> None:
    recorder = Recorder(person.api)
    first = recorder.history("first run")
    a = recorder.dataset(first, b"a\n", name="a.txt")
    cat = recorder.run(first, "cat1", {"input1": ("hda", a["id"])}, ["out_file1"])
    second = recorder.history("second run")
    b = recorder.dataset(second, b"b\n", name="b.txt")
    recorder.run(second, "sort1", {"input": ("hda", b["id"])}, ["out_file1"])

    page = person.page
    page.get_by_role("link", name="Extraction").click()
    page.get_by_label("first run").check()
    page.get_by_label("second run").check()
    checklists = page.get_by_test_id("checklist")
    expect(checklists).to_have_count(2)
    expect(checklists.first).to_contain_text("HID 1")
    expect(checklists.first).to_contain_text("cat1")
    expect(checklists.last).to_contain_text("sort1")
    page.get_by_label("Workflow name").fill("cat and sort")
    page.locator("[data-step=input_dataset]").first.get_by_label("Input name").fill("first input")
    joined = cat["outputs"][0]
    checklists.first.get_by_label(f"Label for output HID {joined['hid']}").fill("joined")
    page.get_by_test_id("extract").click()
    ready = page.get_by_test_id("workflow-ready")
    expect(ready).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        ready.get_by_test_id("download-ga").click()
    assert download.value.suggested_filename == "cat_and_sort.ga"
    workflow = json.loads(Path(download.value.path()).read_text())
    assert workflow["format-version"] == "0.1"
    assert workflow["name"] == "cat and sort"
    steps = list(workflow["steps"].values())
    assert sorted(s.get("tool_id") or s["type"] for s in steps) == [
        "cat1",
        "data_input",
        "data_input",
        "sort1",
    ]
    assert any(s.get("label") == "first input" for s in steps)
    labels = [o.get("label") for s in steps for o in s.get("workflow_outputs", [])]
    assert "joined" in labels

    with page.expect_download() as yaml_download:
        ready.get_by_test_id("download-format2").click()
    assert "class: GalaxyWorkflow" in Path(yaml_download.value.path()).read_text()
    wait_for(lambda: len(person.api.get("/api/histories").json()) == 2, timeout=5)
