"""Nothing stored is lost, and nothing lost is offered.

- The local S3 server keeps what it stored: after a restart (what `make stop && make
  run` does to it) completed exports still download and uploads keep their bytes.
- The database never says more than storage holds: the tracker's storage reconcile
  expires a completed task whose artifact vanished and marks a file whose bytes
  vanished as missing (and not missing once they are back); the file's content answers
  410 at once, never a Content-Length followed by a closed connection; an export naming
  the file fails that file alone, with a clear error; any other read of a vanished
  object (a workflow's document) answers 410 too, never a 500."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from typing import Any

import asyncpg
import httpx
import pytest

from support.provenance import Recorder
from support.stack import Stack, create_export, finished, s3_client, upload, wait_for

pytestmark = pytest.mark.slow

GONE = "no longer in storage"


def _storage_key(stack: Stack, file_id: int) -> str:
    async def run() -> str:
        conn = await asyncpg.connect(
            stack.infra.database_url.replace("postgresql+asyncpg", "postgresql")
        )
        try:
            key: str = await conn.fetchval("SELECT storage_key FROM files WHERE id = $1", file_id)
            return key
        finally:
            await conn.close()

    return asyncio.run(run())


def _completed_export(client: httpx.Client, name: str, file_ids: list[int]) -> dict[str, Any]:
    created = create_export(client, name, file_ids, "zip")
    assert created.status_code == 202, created.text
    job = finished(client, created.json()["id"])
    assert job["status"] == "completed", job
    return job


def _zip_member(url: str, name: str) -> bytes:
    download = httpx.get(url)
    assert download.status_code == 200, download.text
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        return archive.read(name)


def test_exports_and_uploads_survive_a_restart_of_the_s3_server(stack: Stack) -> None:
    data = b"gene,count\nBRCA1,12\nTP53,7\n" * 2000
    with stack.new_user() as client:
        uploaded = upload(client, "counts.csv", data)
        job = _completed_export(client, "before the restart", [uploaded["id"]])

        stopped_at = time.monotonic()
        stack.infra.stop_s3()
        stack.infra.start_s3()

        content = client.get(f"/api/files/{uploaded['id']}/content")
        assert content.status_code == 200
        assert content.content == data
        again = client.get(f"/api/data-export/jobs/{job['id']}").json()
        assert again["status"] == "completed"
        assert _zip_member(again["download_url"], "counts.csv") == data
        print(
            f"S3 server restarted: the upload and the export's artifact served again "
            f"{time.monotonic() - stopped_at:.1f} s after the stop, byte for byte"
        )


def test_a_completed_export_whose_artifact_vanished_is_expired(stack: Stack) -> None:
    with stack.new_user() as client:
        uploaded = upload(client, "kept.txt", b"the bytes")
        job = _completed_export(client, "artifact to lose", [uploaded["id"]])
        s3 = s3_client(stack.infra)
        artifacts = list(
            s3.list_objects(stack.infra.bucket, prefix=f"exports/{job['task_id']}/", recursive=True)
        )
        assert artifacts
        for obj in artifacts:
            s3.remove_object(stack.infra.bucket, obj.object_name or "")

        def expired() -> dict[str, Any] | None:
            now: dict[str, Any] = client.get(f"/api/data-export/jobs/{job['id']}").json()
            return now if now["status"] == "expired" else None

        removed_at = time.monotonic()
        now = wait_for(expired, timeout=30, message="the reconcile to expire the job")
        print(
            f"artifact removed behind Waybill's back: the job expired with a clear error "
            f"{time.monotonic() - removed_at:.1f} s later (reconcile every 2 s)"
        )
        assert now["download_url"] is None
        assert GONE in now["error_message"]
        # The file it was made from is untouched.
        assert client.get(f"/api/files/{uploaded['id']}").json()["status"] == "available"


def test_a_file_whose_bytes_vanished_answers_410_and_fails_alone(stack: Stack) -> None:
    with stack.new_user() as client:
        lost = upload(client, "lost.csv", b"a,b\n1,2\n")
        kept = upload(client, "kept.csv", b"a,b\n3,4\n")
        key = _storage_key(stack, lost["id"])
        s3 = s3_client(stack.infra)
        s3.remove_object(stack.infra.bucket, key)

        # At once, before any reconcile: storage's own answer decides, before a byte
        # of the response is sent.
        content = client.get(f"/api/files/{lost['id']}/content")
        assert content.status_code == 410
        assert GONE in content.json()["detail"]

        wait_for(
            lambda: client.get(f"/api/files/{lost['id']}").json()["status"] == "missing",
            timeout=30,
            message="the reconcile to mark the file missing",
        )
        listed = {f["id"]: f["status"] for f in client.get("/api/files").json()}
        assert listed[lost["id"]] == "missing" and listed[kept["id"]] == "available"

        job = _completed_export(client, "one file lost", [lost["id"], kept["id"]])
        results = {f["file_id"]: f for f in job["files"]}
        assert results[lost["id"]]["status"] == "failed"
        assert GONE in results[lost["id"]]["error"]
        assert results[kept["id"]]["status"] == "completed"
        assert job["failed_files"] == 1
        assert _zip_member(job["download_url"], "kept.csv") == b"a,b\n3,4\n"

        # The bytes come back (restored from a backup): so does the file.
        s3.put_object(stack.infra.bucket, key, io.BytesIO(b"a,b\n1,2\n"), 8)
        wait_for(
            lambda: client.get(f"/api/files/{lost['id']}").json()["status"] == "available",
            timeout=30,
            message="the reconcile to see the bytes back",
        )
        assert client.get(f"/api/files/{lost['id']}/content").content == b"a,b\n1,2\n"


def test_a_workflow_whose_document_vanished_answers_410(stack: Stack) -> None:
    with stack.new_user() as client:
        rec = Recorder(client)
        h = rec.history()
        a = rec.dataset(h, b"a\n", "a.txt")
        run = rec.run(h, "cat1", {"input1": ("hda", a["id"])}, ["out_file1"])
        response = client.post(
            "/api/workflows/extract",
            json={"workflow_name": "to lose", "job_ids": [run["jobs"][0]["id"]]},
            headers={"Prefer": "wait=30"},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "completed", result
        s3 = s3_client(stack.infra)
        prefix = f"workflows/{result['task_id']}/"
        for obj in s3.list_objects(stack.infra.bucket, prefix=prefix, recursive=True):
            s3.remove_object(stack.infra.bucket, obj.object_name or "")

        workflow = f"/api/workflows/{result['workflow_id']}"
        for url in (workflow, f"{workflow}/download?format=ga"):
            gone = client.get(url)
            assert gone.status_code == 410, (url, gone.status_code, gone.text)
            assert GONE in gone.json()["detail"]
