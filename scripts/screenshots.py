"""Screenshots of each page of the web UI, for the README: docs/screenshots/*.png.

Starts its own stack (the test fixtures' servers: a database, vhost and S3 server of
its own, removed after), fills it with a small example through the API, and takes each
page in Debian's headless chromium at 1280 px (the Exports page also at 390 px).

    uv run python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from support.browser import chromium_path, sign_in  # noqa: E402
from support.provenance import Recorder  # noqa: E402
from support.stack import (  # noqa: E402
    create_export,
    finished,
    start_infra,
    start_stack,
    stop_infra,
    upload,
    wait_for,
)

COUNTS = b"gene_id,log2FoldChange,padj\n" + b"".join(
    f"ENSG{i:08d},{(i % 9) - 4}.25,{(i % 97) / 1000:.3f}\n".encode() for i in range(2000)
)


def seed(api: httpx.Client) -> dict[str, int]:
    """A researcher's morning: files in a project, exports, two histories with runs."""
    project = api.post("/api/projects", json={"name": "Liver RNA-seq 2026"}).json()["id"]
    counts = upload(
        api,
        "deseq2_counts.csv",
        COUNTS,
        project_id=str(project),
        metadata='{"organism": "human", "tissue": "liver"}',
    )
    samples = upload(
        api,
        "samples.tsv",
        b"sample\tcondition\nS1\tcontrol\nS2\ttreated\n",
        project_id=str(project),
        metadata='{"batch": 3}',
    )
    upload(api, "notes.json", b'[{"run": 1, "ok": true}]')
    broken = upload(api, "scan.bin", bytes(range(256)) * 4)
    parquet = create_export(
        api,
        "Significant genes (Parquet)",
        [counts["id"]],
        "parquet",
        export_options={
            "compression": "zstd",
            "columns": ["gene_id", "padj"],
            "filter": {"column": "padj", "op": "<", "value": 0.05},
        },
        include_lineage=True,
    ).json()
    excel = create_export(
        api, "Tables for the wet lab", [counts["id"], samples["id"], broken["id"]], "excel"
    ).json()
    for job in (parquet, excel):
        finished(api, job["id"])

    recorder = Recorder(api)
    first = recorder.history("Liver RNA-seq: alignment")
    forward = recorder.dataset(first, b"@r1\nACGT\n+\nIIII\n", name="S1_R1.fastq")
    reverse = recorder.dataset(first, b"@r1\nTGCA\n+\nIIII\n", name="S1_R2.fastq")
    recorder.collection(
        first,
        "paired",
        [
            {"name": "forward", "src": "hda", "id": forward["id"]},
            {"name": "reverse", "src": "hda", "id": reverse["id"]},
        ],
        name="S1 reads",
    )
    aligned = recorder.run(
        first,
        "bowtie2",
        {"input_1": ("hda", forward["id"]), "input_2": ("hda", reverse["id"])},
        ["output"],
    )
    recorder.run(
        first, "samtools_sort", {"input1": ("hda", aligned["outputs"][0]["id"])}, ["output1"]
    )
    second = recorder.history("Liver RNA-seq: counts")
    table = recorder.dataset(second, COUNTS[:2000], name="counts.csv")
    recorder.run(second, "deseq2", {"counts": ("hda", table["id"])}, ["results", "plots"])
    made = api.post(
        f"/api/histories/{first}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
    ).json()
    wait_for(
        lambda: api.get(f"/api/short_term_storage/{made['storage_request_id']}/ready").json(),
        timeout=60,
        message="the history export",
    )
    return {"first": first, "second": second}


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_timeout(300)  # transitions settle
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(f"wrote {out / name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    infra = start_infra(Path(tempfile.mkdtemp(prefix="waybill-shots-")))
    stack = start_stack(infra)
    try:
        with stack.new_user("ada") as api:
            key = str(api.headers["Authorization"]).removeprefix("Bearer ")
            histories = seed(api)
            with sync_playwright() as playwright:
                playwright.selectors.set_test_id_attribute("data-test")
                browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
                context = browser.new_context(
                    viewport={"width": 1280, "height": 800}, base_url=stack.gateway_url
                )
                page = context.new_page()
                page.goto("/login")
                expect(page.get_by_label("API key")).to_be_visible()
                shoot(page, args.out, "login")
                sign_in(page, key, "/files")
                expect(page.get_by_text("deseq2_counts.csv")).to_be_visible()
                shoot(page, args.out, "files")
                page.get_by_role("link", name="Exports").click()
                expect(page.get_by_test_id("job-status").first).to_have_text("completed")
                shoot(page, args.out, "exports")
                page.get_by_test_id("new-export").click()
                dialog = page.get_by_role("dialog", name="New export")
                dialog.get_by_label("deseq2_counts.csv").check()
                dialog.get_by_label("Name", exact=True).fill("DE genes for the paper")
                dialog.get_by_label("compression", exact=True).select_option("zstd")
                dialog.get_by_role("button", name="Add column gene_id").click()
                dialog.get_by_role("button", name="Add column padj").click()
                dialog.get_by_role("button", name="Add a condition").click()
                dialog.get_by_label("Condition 1: column").fill("padj")
                dialog.get_by_label("Condition 1: test").select_option("<")
                dialog.get_by_label("Condition 1: value").fill("0.05")
                page.set_viewport_size({"width": 1280, "height": 1500})
                page.screenshot(path=str(args.out / "export-dialog.png"))
                print(f"wrote {args.out / 'export-dialog.png'}")
                page.keyboard.press("Escape")
                page.set_viewport_size({"width": 1280, "height": 800})
                page.goto(f"/histories?id={histories['first']}")
                expect(page.get_by_test_id("exports")).to_contain_text("ready")
                shoot(page, args.out, "histories")
                page.get_by_role("link", name="Extraction").click()
                page.get_by_label("Liver RNA-seq: alignment").check()
                page.get_by_label("Liver RNA-seq: counts").check()
                expect(page.get_by_test_id("checklist")).to_have_count(2)
                page.get_by_label("Workflow name").fill("Liver RNA-seq, end to end")
                shoot(page, args.out, "extraction")
                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, base_url=stack.gateway_url
                ).new_page()
                sign_in(phone, key, "/exports")
                expect(phone.get_by_test_id("job-status").first).to_have_text("completed")
                shoot(phone, args.out, "exports-390")
                browser.close()
    finally:
        stack.stop()
        stop_infra(infra)


if __name__ == "__main__":
    main()
