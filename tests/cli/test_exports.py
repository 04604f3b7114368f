"""waybill upload and waybill export against the real stack: the flows a researcher
runs, their --json output and their exit codes."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import httpx
import pyarrow.parquet as pq

from support.cli import Waybill, new_key, run_on_terminal
from support.stack import Stack, wait_for

CSV = b"gene,count,padj\nBRCA1,12,0.01\nTP53,7,0.5\n"


def upload(waybill: Waybill, name: str, data: bytes, *args: str) -> dict:
    path = waybill.cwd / name
    path.write_bytes(data)
    result = waybill("upload", name, *args, "--json")
    assert result.code == 0, result.stderr
    (stored,) = result.json()
    return stored


def test_upload_export_wait_download_and_read_back(waybill: Waybill) -> None:
    (waybill.cwd / "notes.txt").write_text("a note\n")
    (waybill.cwd / "counts.csv").write_bytes(CSV)
    uploaded = waybill(
        "upload", "counts.csv", "notes.txt", "--metadata", '{"organism": "human"}', "--json"
    )
    assert uploaded.code == 0, uploaded.stderr
    counts, notes = uploaded.json()
    assert (counts["filename"], counts["format"], counts["size"]) == ("counts.csv", "csv", len(CSV))
    assert counts["metadata"] == notes["metadata"] == {"organism": "human"}

    created = waybill(
        "export", "create", "--format", "parquet", "--file", str(counts["id"]),
        "--option", "compression=zstd", "--option", "row_group_size=1000",
        "--name", "genes as parquet", "--wait", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    job = created.json()
    assert job["status"] == "completed" and int(job["progress"]) == 100
    assert job["export_options"]["compression"] == "zstd"
    assert job["export_options"]["row_group_size"] == 1000
    assert created.stderr == ""  # --json: nothing but the document

    # Without --json and piped: plain progress lines on stderr, a summary on stdout.
    again = waybill("export", "create", "--format", "csv", "--file", str(notes["id"]), "--wait")
    assert again.code == 0, again.stderr
    assert "completed 100%" in again.stderr and "\x1b[" not in again.stderr
    assert "completed" in again.stdout

    saved = waybill("export", "download", str(job["id"]), "-o", "out/", "--json")
    assert saved.code == 0, saved.stderr
    (package,) = saved.json()["files"]
    with zipfile.ZipFile(waybill.cwd / package["path"]) as archive:
        table = pq.read_table(io.BytesIO(archive.read("counts.parquet")))
        manifest = json.loads(archive.read("export_metadata.json"))
    assert table.to_pylist() == [
        {"gene": "BRCA1", "count": 12, "padj": 0.01},
        {"gene": "TP53", "count": 7, "padj": 0.5},
    ]
    assert manifest["files"][0]["metadata"] == {"organism": "human"}
    # A second download does not overwrite silently.
    exists = waybill("export", "download", str(job["id"]), "-o", package["path"])
    assert exists.code == 1 and "--force" in exists.error_line

    listed = waybill("export", "list", "--status", "completed", "--json")
    assert listed.code == 0
    assert {(j["export_format"], j["status"]) for j in listed.json()} == {
        ("parquet", "completed"),
        ("csv", "completed"),
    }
    assert job["id"] in [j["id"] for j in listed.json()]

    original = waybill("file", "download", str(counts["id"]), "-o", "copy.csv")
    assert original.code == 0 and (waybill.cwd / "copy.csv").read_bytes() == CSV

    deleted = waybill("export", "delete", str(job["id"]), "--json")
    assert deleted.code == 0 and deleted.json() == {"job_id": job["id"], "deleted": True}
    gone = waybill("export", "get", str(job["id"]))
    assert gone.code == 1 and "not found" in gone.error_line


def test_uncompressed_single_file_is_the_file_itself(waybill: Waybill) -> None:
    f = upload(waybill, "raw.csv", CSV)
    created = waybill(
        "export", "create", "--format", "zip", "--file", str(f["id"]), "--no-compress",
        "--ttl", "1", "--wait", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    assert created.json()["compress"] is False
    saved = waybill("export", "download", str(created.json()["id"]), "-o", "got.csv")
    assert saved.code == 0 and (waybill.cwd / "got.csv").read_bytes() == CSV


def test_a_failed_export_exits_1_with_its_reason(waybill: Waybill) -> None:
    png = upload(waybill, "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    failed = waybill(
        "export", "create", "--format", "csv", "--file", str(png["id"]), "--wait", "--json"
    )
    assert failed.code == 1
    assert failed.json()["status"] == "failed"  # the document is still printed
    assert f"export {failed.json()['id']} failed" in failed.error_line
    assert "every file failed" in failed.error_line

    not_ready = waybill("export", "download", str(failed.json()["id"]))
    assert not_ready.code == 1 and "nothing to download" in not_ready.error_line


def test_cancel_a_running_export(waybill: Waybill, stack: Stack) -> None:
    rows = b"gene,n,x\n" + "".join(f"g{i},{i},{i * 0.5}\n" for i in range(100_000)).encode()
    files = [upload(waybill, f"big{i}.csv", rows)["id"] for i in range(3)]
    created = waybill(
        "export", "create", "--format", "excel", "--file", ",".join(map(str, files)), "--json"
    )
    assert created.code == 0, created.stderr
    job_id = created.json()["id"]
    watcher = waybill.popen("export", "watch", str(job_id))
    try:
        wait_for(
            lambda: (
                waybill("export", "get", str(job_id), "--json").json()["status"] == "processing"
            ),
            timeout=60,
            message="the export to start",
        )
        cancelled = waybill("export", "cancel", str(job_id), "--json")
        assert cancelled.code == 0, cancelled.stderr
        assert cancelled.json()["job_id"] == job_id
        stdout, stderr = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    # The watcher saw the job end as cancelled: exit 1, one error line.
    assert watcher.returncode == 1, stderr
    assert f"export {job_id}: processing" in stderr
    assert f"error: export {job_id} cancelled" in stderr
    assert "cancelled" in stdout

    twice = waybill("export", "cancel", str(job_id))
    assert twice.code == 1 and "already cancelled" in twice.error_line


def test_bad_usage_exits_2_in_one_line(waybill: Waybill) -> None:
    f = upload(waybill, "a.csv", CSV)
    cases = [
        (("export", "create", "--file", str(f["id"])), "Missing option '--format'"),
        (("export", "create", "--format", "csv"), "at least one --file"),
        (("export", "create", "--format", "csv", "--file", "x1"), "'x1' is not an integer id"),
        (
            ("export", "create", "--format", "csv", "--file", "1", "--option", "novalue"),
            "KEY=VALUE",
        ),
        (("upload", "missing.csv"), "does not exist"),
        (("upload", "a.csv", "--metadata", "[1, 2]"), "must be a JSON object"),
        (("export", "create", "--format", "csv", "--file", "1", "--ttl", "500"), "--ttl"),
        # Refused by the gateway as invalid (422): the user's request was wrong.
        (
            ("export", "create", "--format", "csv", "--file", str(f["id"]), "--option", "bogus=1"),
            "invalid request",
        ),
        (("export", "create", "--format", "docx", "--file", str(f["id"])), "invalid request"),
    ]
    for args, message in cases:
        result = waybill(*args)
        assert result.code == 2, (args, result)
        assert message in result.error_line, (args, result.stderr)
        assert result.stdout == ""


def test_another_users_export_is_not_found(
    waybill: Waybill, stack: Stack, make_waybill: Callable[[str], Waybill]
) -> None:
    f = upload(waybill, "mine.csv", CSV)
    job = waybill("export", "create", "--format", "zip", "--file", str(f["id"]), "--json").json()
    other = make_waybill("other")
    assert other("login", "--url", stack.gateway_url, "--key", new_key(stack)).code == 0
    for args in (("export", "get"), ("export", "cancel"), ("export", "download"), ("file", "get")):
        target = f["id"] if args == ("file", "get") else job["id"]
        result = other(*args, str(target))
        assert result.code == 1 and "not found" in result.error_line, (args, result)
    assert other("export", "list", "--json").json() == []
    assert other("file", "list", "--json").json() == []


def test_on_a_terminal_progress_is_drawn_as_bars(waybill: Waybill) -> None:
    (waybill.cwd / "one.csv").write_bytes(CSV)
    (waybill.cwd / "two.csv").write_bytes(CSV)
    code, stdout, terminal = run_on_terminal(waybill, "upload", "one.csv", "two.csv", "--json")
    assert code == 0, terminal
    ids = [f["id"] for f in json.loads(stdout)]
    assert terminal == ""  # --json: no progress, even on a terminal

    code, stdout, terminal = run_on_terminal(
        waybill, "export", "create", "--format", "tsv", "--file", f"{ids[0]},{ids[1]}", "--wait"
    )
    assert code == 0, terminal
    assert "━" in terminal and "\x1b[" in terminal  # rich bars, with colours
    assert "100%" in terminal and "one.csv" in terminal and "two.csv" in terminal
    assert "completed" in stdout and "━" not in stdout


def stream_requests(stack: Stack) -> float:
    """How many job streams the gateway answered with 200 so far (its metrics)."""
    metrics = httpx.get(f"{stack.gateway_url}/metrics").text
    total = 0.0
    for line in metrics.splitlines():
        if (
            line.startswith("waybill_http_requests_total{")
            and 'route="/api/data-export/jobs/{job_id}/stream"' in line
            and 'status="200"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_wait_follows_the_job_s_event_stream(stack: Stack, waybill: Waybill) -> None:
    """--wait learns of changes from the gateway's stream, not by polling alone."""
    stored = upload(waybill, "streamed.csv", CSV)
    before = stream_requests(stack)
    created = waybill(
        "export", "create", "--format", "tsv", "--file", str(stored["id"]), "--wait", "--json"
    )
    assert created.code == 0, created.stderr
    assert created.json()["status"] == "completed"
    # Counted when the stream's response has ended (the server closes it at the end).
    wait_for(lambda: stream_requests(stack) > before, timeout=10, message="a job stream")
