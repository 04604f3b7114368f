"""The Exports page: the create dialog driven by GET /api/data-export/formats, job
cards with live progress, download, cancel, delete, and readable errors."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
from playwright.sync_api import Page, expect

from support.browser import Person
from support.stack import Stack, upload, wait_for

CSV = b"gene,log2fc,padj\n" + b"".join(
    f"g{i},{(i % 7) - 3}.5,{i / 1000:.3f}\n".encode() for i in range(200)
)


def job_card(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("article.job", has=page.get_by_role("heading", name=name))


def test_upload_then_parquet_export_with_options_reaches_100_and_reads_back(
    person: Person, tmp_path: Path
) -> None:
    page = person.page
    source = tmp_path / "counts.csv"
    source.write_bytes(CSV)

    page.get_by_role("link", name="Files").click()
    page.get_by_label("File", exact=True).set_input_files(source)
    page.get_by_label("Metadata").fill('{"organism": "human"}')
    page.get_by_role("button", name="Upload", exact=True).click()
    row = page.locator("tr", has_text="counts.csv")
    expect(row.get_by_test_id("format")).to_have_text("csv")
    expect(row).to_contain_text("organism: human")
    expect(page.get_by_role("progressbar", name="Upload progress")).to_have_attribute(
        "aria-valuenow", "100"
    )

    row.get_by_role("checkbox").check()
    page.get_by_role("button", name="Export 1 selected").click()
    dialog = page.get_by_role("dialog", name="New export")
    expect(dialog.get_by_label("counts.csv")).to_be_checked()
    dialog.get_by_label("Name", exact=True).fill("counts as parquet")
    dialog.get_by_label("Format", exact=True).select_option("parquet")
    dialog.get_by_label("compression", exact=True).select_option("zstd")
    dialog.get_by_label("row group size").fill("50")
    # The column picker offers the file's header; the output keeps this order.
    dialog.get_by_role("button", name="Add column padj").click()
    dialog.get_by_role("button", name="Add column gene").click()
    dialog.get_by_role("button", name="Move gene up").click()
    dialog.get_by_role("button", name="Add a condition").click()
    dialog.get_by_label("Condition 1: column").fill("padj")
    dialog.get_by_label("Condition 1: test").select_option("<")
    dialog.get_by_label("Condition 1: value").fill("0.05")
    dialog.get_by_label("compress into one ZIP").uncheck()
    dialog.get_by_label("Keep the result for").fill("2")
    dialog.get_by_test_id("create-export").click()
    expect(dialog).to_be_hidden()

    card = job_card(page, "counts as parquet")
    expect(card.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", "100", timeout=60_000
    )
    expect(card.get_by_test_id("job-status")).to_have_text("completed")
    expect(card).to_contain_text("50 / 200 rows")
    expect(card).to_contain_text("expires")
    expect(page.get_by_test_id("statistics")).to_contain_text("1 jobs")

    with page.expect_download() as download_info:
        card.get_by_test_id("download").click()
    table = pq.read_table(download_info.value.path())
    assert table.column_names == ["gene", "padj"]
    assert table.num_rows == 50
    assert max(table.column("padj").to_pylist()) < 0.05
    parquet = pq.ParquetFile(download_info.value.path())
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    assert parquet.metadata.num_row_groups == 1 or parquet.metadata.row_group(0).num_rows <= 50

    (job,) = person.api.get("/api/data-export/jobs").json()
    assert job["export_options"]["compression"] == "zstd"
    assert job["export_options"]["row_group_size"] == 50
    assert job["export_options"]["columns"] == ["gene", "padj"]
    assert job["export_options"]["filter"] == {"column": "padj", "op": "<", "value": 0.05}
    assert (job["compress"], job["ttl_hours"]) == (False, 2)


def test_cancel_a_running_export(person: Person) -> None:
    rows = "".join(f"g{i},{i},{i * 0.5}\n" for i in range(100_000)).encode()
    for i in range(4):
        upload(person.api, f"big{i}.csv", b"gene,n,x\n" + rows)
    page = person.page
    page.get_by_test_id("new-export").click()
    dialog = page.get_by_role("dialog", name="New export")
    dialog.get_by_label("Name", exact=True).fill("to cancel")
    dialog.get_by_label("Format", exact=True).select_option("excel")
    for i in range(4):
        dialog.get_by_label(f"big{i}.csv").check()
    dialog.get_by_test_id("create-export").click()
    card = job_card(page, "to cancel")
    expect(card.get_by_test_id("job-status")).to_have_text("processing", timeout=60_000)
    card.get_by_test_id("cancel").click()
    expect(card.get_by_test_id("job-status")).to_have_text("cancelled", timeout=30_000)
    expect(card.get_by_test_id("cancel")).to_have_count(0)
    expect(card.get_by_test_id("download")).to_have_count(0)
    (job,) = person.api.get("/api/data-export/jobs").json()
    assert job["status"] == "cancelled"

    page.once("dialog", lambda d: d.accept())
    card.get_by_test_id("delete").click()
    expect(card).to_have_count(0)
    wait_for(lambda: person.api.get("/api/data-export/jobs").json() == [], timeout=10)


def test_api_errors_are_shown_readably(person: Person) -> None:
    upload(person.api, "small.csv", b"a,b\n1,2\n")
    page = person.page
    page.get_by_test_id("new-export").click()
    dialog = page.get_by_role("dialog", name="New export")
    dialog.get_by_label("Name", exact=True).fill("bad sheet")
    dialog.get_by_label("Format", exact=True).select_option("excel")
    dialog.get_by_label("small.csv").check()
    dialog.get_by_label("sheet name").fill("a[b")
    dialog.get_by_test_id("create-export").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Invalid request")
    expect(alert).to_contain_text(re.compile(r"sheet_name.*may not contain \["))
    # Keyboard only: Escape closes the dialog; nothing was made.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert person.api.get("/api/data-export/jobs").json() == []


def test_every_format_and_its_options_are_offered(person: Person, stack: Stack) -> None:
    formats = person.api.get("/api/data-export/formats").json()
    page = person.page
    page.get_by_test_id("new-export").click()
    dialog = page.get_by_role("dialog", name="New export")
    expect(dialog.get_by_label("Format", exact=True).locator("option")).to_have_count(len(formats))
    offered = (
        dialog.get_by_label("Format", exact=True)
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert offered == [f["name"] for f in formats]
    for name, option in (("csv", "delimiter"), ("excel", "sheet name"), ("avro", "codec")):
        dialog.get_by_label("Format", exact=True).select_option(name)
        expect(dialog.get_by_test_id("format-options")).to_contain_text(option)
    dialog.get_by_label("Format", exact=True).select_option("zip")
    expect(dialog.get_by_test_id("column-picker")).to_have_count(0)
    # Without a key the list is refused like every route.
    assert stack.client(None).get("/api/data-export/formats").status_code == 401


def test_files_are_browsed_by_project(person: Person, tmp_path: Path) -> None:
    upload(person.api, "loose.csv", b"a\n1\n")
    page = person.page
    page.get_by_role("link", name="Files").click()
    page.get_by_label("New project name").fill("Liver")
    page.get_by_role("button", name="Add project").click()
    # The new project is offered, and chosen for the next upload and the list.
    expect(page.locator("#project-filter option", has_text="Liver")).to_have_count(1)
    (project,) = person.api.get("/api/projects").json()
    expect(page.locator("#upload-project")).to_have_value(str(project["id"]))
    expect(page.locator("#project-filter")).to_have_value(str(project["id"]))
    source = tmp_path / "liver.tsv"
    source.write_bytes(b"gene\tcount\nA\t1\n")
    page.get_by_label("File", exact=True).set_input_files(source)
    page.get_by_role("button", name="Upload", exact=True).click()
    table = page.locator("tbody")
    expect(table.locator("tr")).to_have_count(1)  # the project chosen: its file alone
    expect(table).to_contain_text("liver.tsv")
    expect(table.get_by_test_id("format")).to_have_text("tsv")
    page.locator("#project-filter").select_option("")
    expect(table.locator("tr")).to_have_count(2)
    expect(table).to_contain_text("loose.csv")


def test_an_export_is_made_from_the_keyboard_alone(person: Person) -> None:
    upload(person.api, "keys.csv", b"a,b\n1,2\n")
    page = person.page
    page.get_by_test_id("new-export").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New export")
    expect(dialog.get_by_label("keys.csv")).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("typed, not clicked")
    for _ in range(3):  # the format, the description, the first file
        page.keyboard.press("Tab")
    expect(dialog.get_by_label("keys.csv")).to_be_focused()
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # submits the form
    card = job_card(page, "typed, not clicked")
    expect(card.get_by_test_id("job-status")).to_have_text("completed", timeout=60_000)
    (job,) = person.api.get("/api/data-export/jobs").json()
    assert (job["export_format"], job["total_files"]) == ("parquet", 1)
