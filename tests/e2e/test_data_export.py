"""Batch export end to end: gateway -> RabbitMQ -> export-worker -> S3, tracker ->
Postgres; against the real servers."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from support.stack import Stack, finished, upload, wait_for


def test_zip_export_lifecycle(stack: Stack) -> None:
    with stack.new_user() as user:
        first = upload(
            user, "counts.csv", b"gene,count\nBRCA1,12\nTP53,7\n", metadata='{"organism": "human"}'
        )
        second = upload(user, "notes.txt", "héllo\nworld\n".encode())
        assert first["format"] == "csv" and first["metadata"] == {"organism": "human"}
        created = user.post(
            "/api/data-export/jobs",
            json={
                "name": "My export",
                "file_ids": [first["id"], second["id"]],
                "export_format": "zip",
            },
        )
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["status"] == "pending" and job["progress"] == 0
        # A GET right after the answer finds the job.
        assert user.get(f"/api/data-export/jobs/{job['id']}").status_code == 200

        done = finished(user, job["id"])
        assert done["status"] == "completed", done
        assert done["progress"] == 100
        assert done["processed_files"] == 2 and done["failed_files"] == 0
        assert [f["status"] for f in done["files"]] == ["completed", "completed"]
        assert done["output_size"] > 0 and done["started_at"] and done["completed_at"]
        assert done["expires_at"]

        # The signed URL downloads with a plain client, with exactly the uploaded bytes.
        package = httpx.get(done["download_url"]).content
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            assert archive.read("counts.csv") == b"gene,count\nBRCA1,12\nTP53,7\n"
            assert archive.read("notes.txt") == "héllo\nworld\n".encode()
            manifest = json.loads(archive.read("export_metadata.json"))
        assert manifest["export_info"]["name"] == "My export"
        assert [f["metadata"] for f in manifest["files"]] == [{"organism": "human"}, {}]
        assert len(package) == done["output_size"]

        # The events went pending -> processing -> completed, progress never backwards.
        events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
        statuses = [e["status"] for e in events]
        assert statuses[0] == "processing" and statuses[-1] == "completed"
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress)

        listed = user.get("/api/data-export/jobs", params={"status": "completed"}).json()
        assert [j["id"] for j in listed] == [job["id"]]
        stats = user.get("/api/data-export/statistics").json()
        assert stats["total_jobs"] == 1 and stats["by_status"] == {"completed": 1}
        assert stats["by_format"] == {"zip": 1} and stats["total_files_exported"] == 2

        # Delete removes the artifact: the signed URL stops working.
        assert user.delete(f"/api/data-export/jobs/{job['id']}").status_code == 204
        assert user.get(f"/api/data-export/jobs/{job['id']}").status_code == 404
        assert httpx.get(done["download_url"]).status_code in (
            403,
            404,
        )  # S3 says 403 without ListBucket


def test_job_key_is_idempotent(stack: Stack) -> None:
    with stack.new_user() as user:
        f = upload(user, "a.txt", b"a")
        body = {"name": "keyed", "file_ids": [f["id"]], "export_format": "zip", "job_key": "k-1"}
        first = user.post("/api/data-export/jobs", json=body)
        again = user.post("/api/data-export/jobs", json=body)
        assert first.status_code == 202 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        finished(user, first.json()["id"])
        assert user.get("/api/data-export/statistics").json()["total_jobs"] == 1


def test_single_file_uncompressed_is_the_file_itself(stack: Stack) -> None:
    with stack.new_user() as user:
        data = b"x,y\n1,2\n"
        f = upload(user, "one.csv", data)
        job = user.post(
            "/api/data-export/jobs",
            json={
                "name": "single",
                "file_ids": [f["id"]],
                "export_format": "zip",
                "compress": False,
            },
        ).json()
        done = finished(user, job["id"])
        assert done["status"] == "completed"
        assert httpx.get(done["download_url"]).content == data


def test_cancelled_pending_job_is_never_processed(stack: Stack) -> None:
    """Stop the worker, create and cancel, start it again: the job stays cancelled and
    no artifact is made."""
    worker = stack.services["export-worker"]
    worker.terminate()
    try:
        with stack.new_user() as user:
            f = upload(user, "a.txt", b"a")
            job = user.post(
                "/api/data-export/jobs",
                json={"name": "c", "file_ids": [f["id"]], "export_format": "zip"},
            ).json()
            cancelled = user.post(f"/api/data-export/jobs/{job['id']}/cancel")
            assert cancelled.status_code == 200
            assert cancelled.json() == {
                "message": f"export job {job['id']} cancelled",
                "job_id": job["id"],
            }
            worker.start().wait_ready()
            # The command is consumed (queue drained) and skipped.
            wait_for(lambda: _queue_depth(stack) == 0, message="export queue drained")
            final = user.get(f"/api/data-export/jobs/{job['id']}").json()
            assert final["status"] == "cancelled" and final["download_url"] is None
            assert final["started_at"] is None
            again = user.post(f"/api/data-export/jobs/{job['id']}/cancel")
            assert again.status_code == 409
    finally:
        if not worker.ready():
            worker.start().wait_ready()


def _queue_depth(stack: Stack) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(stack.infra.amqp_url))
    try:
        name = f"{stack.infra.prefix}.export.requests"
        return int(connection.channel().queue_declare(name, passive=True).method.message_count)
    finally:
        connection.close()


def test_other_users_get_404_and_no_key_gets_401(stack: Stack) -> None:
    with stack.new_user() as owner, stack.new_user() as other:
        f = upload(owner, "secret.txt", b"secret")
        job = owner.post(
            "/api/data-export/jobs",
            json={"name": "mine", "file_ids": [f["id"]], "export_format": "zip"},
        ).json()
        for method, path in (
            ("GET", f"/api/data-export/jobs/{job['id']}"),
            ("POST", f"/api/data-export/jobs/{job['id']}/cancel"),
            ("DELETE", f"/api/data-export/jobs/{job['id']}"),
            ("GET", f"/api/files/{f['id']}"),
            ("GET", f"/api/files/{f['id']}/content"),
        ):
            assert other.request(method, path).status_code == 404, (method, path)
        stolen = other.post(
            "/api/data-export/jobs",
            json={"name": "steal", "file_ids": [f["id"]], "export_format": "zip"},
        )
        assert stolen.status_code == 404 and f"file {f['id']} not found" in stolen.json()["detail"]
        assert other.get("/api/data-export/jobs").headers["X-Total-Count"] == "0"
        with stack.client(None) as anonymous:
            assert anonymous.get(f"/api/data-export/jobs/{job['id']}").status_code == 401
            assert anonymous.get("/api/files").status_code == 401
        with stack.client("not-a-key") as wrong:
            assert wrong.get("/api/files").status_code == 401
        assert other.post("/api/data-export/cleanup").status_code == 403
        assert other.post("/api/users", json={"name": "x"}).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "x", "file_ids": [1], "export_format": "docx"}, 422, "export_format"),
        ({"name": "x", "file_ids": [1], "export_format": "zip", "ttl_hours": 0}, 422, "ttl_hours"),
        (
            {"name": "x", "file_ids": [1], "export_format": "zip", "ttl_hours": 169},
            422,
            "ttl_hours",
        ),
        ({"name": "x", "file_ids": [], "export_format": "zip"}, 422, "empty"),
        ({"name": "x", "file_ids": [999999], "export_format": "zip"}, 404, "file 999999 not found"),
        ({"name": "x", "file_ids": [1], "export_format": "zip", "surprise": 1}, 422, "surprise"),
        (
            {"name": "x", "file_ids": [1], "export_format": "csv", "export_options": {"bogus": 1}},
            422,
            "bogus",
        ),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_publish_nothing(
    stack: Stack, body: dict[str, Any], status: int, fragment: str
) -> None:
    with stack.new_user() as user:
        response = user.post("/api/data-export/jobs", json=body)
        assert response.status_code == status, response.text
        assert fragment in json.dumps(response.json()["detail"])
        assert user.get("/api/data-export/jobs").headers["X-Total-Count"] == "0"


def test_malformed_json_is_422(stack: Stack) -> None:
    with stack.new_user() as user:
        response = user.post(
            "/api/data-export/jobs",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422


def test_every_service_answers_probes_and_metrics(stack: Stack) -> None:
    for name, service in stack.services.items():
        base = f"http://127.0.0.1:{service.port}"
        assert httpx.get(f"{base}/livez").status_code == 200, name
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "database": "ok",
            "broker": "ok",
            "storage": "ok",
        }, (name, ready.text)
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200 and "waybill_" in metrics.text, name


def test_conversion_export_with_a_bad_file_failing_alone(stack: Stack) -> None:
    import pyarrow.parquet as pq

    with stack.new_user() as user:
        good = upload(user, "genes.csv", b"gene_id,count,padj\nENSG0001,12,0.01\nENSG0002,,NA\n")
        bad = upload(user, "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary")
        job = user.post(
            "/api/data-export/jobs",
            json={
                "name": "as parquet",
                "file_ids": [good["id"], bad["id"]],
                "export_format": "parquet",
                "export_options": {"compression": "zstd"},
            },
        ).json()
        done = finished(user, job["id"])
        assert done["status"] == "completed", done
        assert done["failed_files"] == 1 and done["processed_files"] == 2
        by_name = {f["filename"]: f for f in done["files"]}
        assert (
            by_name["genes.csv"]["status"] == "completed"
            and by_name["genes.csv"]["output_name"] == "genes.parquet"
        )
        assert (
            by_name["photo.png"]["status"] == "failed"
            and "not a tabular file" in by_name["photo.png"]["error"]
        )
        with zipfile.ZipFile(io.BytesIO(httpx.get(done["download_url"]).content)) as archive:
            assert sorted(archive.namelist()) == ["export_metadata.json", "genes.parquet"]
            table = pq.read_table(io.BytesIO(archive.read("genes.parquet")))
        assert table.to_pylist() == [
            {"gene_id": "ENSG0001", "count": 12, "padj": 0.01},
            {"gene_id": "ENSG0002", "count": None, "padj": None},
        ]
        only_bad = user.post(
            "/api/data-export/jobs",
            json={"name": "bad", "file_ids": [bad["id"]], "export_format": "csv"},
        ).json()
        failed = finished(user, only_bad["id"])
        assert failed["status"] == "failed" and "every file failed" in failed["error_message"]
