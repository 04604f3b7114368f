"""From clicking "Create export" to the job card's bar at 100 %, for a 100 MB CSV ->
Parquet export, against the same export made and watched through the API, in one run.

    uv run python bench/ui/create_to_done.py [--mb 100] [--rounds 3]

Starts its own stack (the test fixtures' servers), uploads the CSV once, then per
round: the export through the UI in Debian's headless chromium (timed in the page,
from the click's event to the moment the new card's progress bar says 100, seen by a
MutationObserver), then the same export through the API (POST, then GET every 50 ms
until completed). Prints both, their ratio, and how the card followed the job
(stream or poll: polling adds up to a second). Never fails on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from support.browser import chromium_path, sign_in  # noqa: E402
from support.stack import start_infra, start_stack, stop_infra  # noqa: E402

# Armed before the click: the click's time, and the time the new job's bar reaches 100.
ARM = """() => {
  window.__clicked = null;
  document.addEventListener('click', (e) => {
    if (e.target.closest('[data-test=create-export]')) window.__clicked = performance.now();
  }, { capture: true, once: true });
  window.__done = new Promise((resolve) => {
    const seen = new Set([...document.querySelectorAll('article.job')].map((a) => a.dataset.jobId));
    const check = (observer) => {
      for (const card of document.querySelectorAll('article.job')) {
        const bar = card.querySelector('[role=progressbar]');
        if (!seen.has(card.dataset.jobId) && bar && bar.getAttribute('aria-valuenow') === '100') {
          observer.disconnect();
          resolve({ at: performance.now(), live: card.dataset.live, status: card.dataset.status });
        }
      }
    };
    const observer = new MutationObserver(() => check(observer));
    observer.observe(document.body, { subtree: true, childList: true, attributes: true });
  });
}"""


def write_csv(path: Path, megabytes: int) -> None:
    row = "ENSG{:08d},{:d},{:.6f},sample_{:d},{}\n"
    with path.open("w") as out:
        out.write("gene_id,count,score,sample,note\n")
        i = 0
        while out.tell() < megabytes * 1_000_000:
            out.write(row.format(i, i % 1000, i / 7, i % 48, "ok" if i % 3 else "check"))
            i += 1


def through_ui(page: Page, file_id: int, name: str) -> tuple[float, str]:
    page.goto("/exports")
    page.get_by_test_id("new-export").click()
    dialog = page.get_by_role("dialog", name="New export")
    dialog.locator(f"input[type=checkbox][value='{file_id}']").check()
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Format", exact=True).select_option("parquet")
    dialog.get_by_label("compress into one ZIP").uncheck()
    page.evaluate(ARM)
    dialog.get_by_test_id("create-export").click()
    done = page.evaluate("() => window.__done", None)
    clicked = page.evaluate("() => window.__clicked")
    assert done["status"] == "completed", done
    return (done["at"] - clicked) / 1000, str(done["live"])


def through_api(api: httpx.Client, file_id: int, name: str) -> float:
    started = time.perf_counter()
    job = api.post(
        "/api/data-export/jobs",
        json={"name": name, "file_ids": [file_id], "export_format": "parquet", "compress": False},
    ).json()
    while True:
        status = api.get(f"/api/data-export/jobs/{job['id']}").json()["status"]
        if status in ("completed", "failed", "cancelled"):
            assert status == "completed", status
            return time.perf_counter() - started
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="the CSV's size in MB (100)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="waybill-ui-bench-"))
    csv = work / "big.csv"
    write_csv(csv, args.mb)
    print(f"CSV: {csv.stat().st_size / 1e6:.1f} MB")
    infra = start_infra(work)
    stack = start_stack(infra)
    try:
        with stack.new_user("bench") as api:
            api.timeout = httpx.Timeout(600)
            with csv.open("rb") as f:
                file_id = api.post("/api/files", files={"file": ("big.csv", f)}).json()["id"]
            key = str(api.headers["Authorization"]).removeprefix("Bearer ")
            ui_times: list[float] = []
            api_times: list[float] = []
            with sync_playwright() as playwright:
                playwright.selectors.set_test_id_attribute("data-test")
                browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
                page = browser.new_context(
                    viewport={"width": 1280, "height": 900}, base_url=stack.gateway_url
                ).new_page()
                page.set_default_timeout(600_000)
                sign_in(page, key, "/exports")
                for n in range(1, args.rounds + 1):
                    ui, live = through_ui(page, file_id, f"ui round {n}")
                    direct = through_api(api, file_id, f"api round {n}")
                    ui_times.append(ui)
                    api_times.append(direct)
                    print(
                        f"round {n}: UI click -> 100 % {ui:.2f} s (card followed by {live}); "
                        f"API create -> completed {direct:.2f} s; ratio {ui / direct:.2f}"
                    )
                browser.close()
            ui_median, api_median = statistics.median(ui_times), statistics.median(api_times)
            print(
                f"median of {args.rounds}: UI {ui_median:.2f} s, API {api_median:.2f} s, "
                f"UI / API {ui_median / api_median:.2f}"
            )
    finally:
        stack.stop()
        stop_infra(infra)


if __name__ == "__main__":
    main()
