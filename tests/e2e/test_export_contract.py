"""The seed's Data Export API, as its clients use it: lookup by job_key, integer
progress, the manifest's documented fields, and `compress: false` with several files
giving the converted files themselves, each with its own signed link."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pyarrow.parquet as pq

from support.stack import Stack, expire_now, finished, s3_client, upload, wait_for


def test_job_key_lookup(stack: Stack) -> None:
    with stack.new_user() as user, stack.new_user() as other:
        f = upload(user, "a.txt", b"a")
        made = user.post(
            "/api/data-export/jobs",
            json={
                "name": "keyed",
                "file_ids": [f["id"]],
                "export_format": "zip",
                "job_key": "run-42",
            },
        ).json()
        user.post(
            "/api/data-export/jobs",
            json={
                "name": "other",
                "file_ids": [f["id"]],
                "export_format": "zip",
                "job_key": "run-43",
            },
        )
        found = user.get("/api/data-export/jobs", params={"job_key": "run-42"})
        assert found.status_code == 200
        assert [j["id"] for j in found.json()] == [made["id"]]
        assert found.headers["X-Total-Count"] == "1"
        assert user.get("/api/data-export/jobs", params={"job_key": "nope"}).json() == []
        # Another user's key names nothing of theirs.
        assert other.get("/api/data-export/jobs", params={"job_key": "run-42"}).json() == []
        assert user.get("/api/data-export/jobs", params={"job_key": ""}).status_code == 422


def test_progress_is_a_whole_percent(stack: Stack) -> None:
    with stack.new_user() as user:
        files = [upload(user, f"{n}.txt", b"x")["id"] for n in range(3)]
        job = user.post(
            "/api/data-export/jobs",
            json={"name": "thirds", "file_ids": files, "export_format": "zip"},
        ).json()
        assert job["progress"] == 0 and isinstance(job["progress"], int)
        done = finished(user, job["id"])
        assert done["progress"] == 100 and isinstance(done["progress"], int)
        raw = user.get(f"/api/data-export/jobs/{job['id']}", headers={}).text
        assert '"progress":100,' in raw  # not 100.0
        events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
        progress = [e["progress"] for e in events]
        assert all(isinstance(p, int) for p in progress), progress
        # 1/3 and 2/3 round down (33, 66): 100 only when completed.
        assert {33, 66} <= set(progress) and progress.count(100) == 1, progress
        assert events[progress.index(100)]["event_type"] == "completed"


def test_manifest_in_the_seeds_shape(stack: Stack) -> None:
    with stack.new_user() as user:
        f = upload(user, "counts.csv", b"gene,count\nBRCA1,12\n", metadata='{"organism": "human"}')
        job = user.post(
            "/api/data-export/jobs",
            json={
                "name": "with manifest",
                "file_ids": [f["id"]],
                "export_format": "csv",
                "job_key": "manifest-1",
                "include_lineage": True,
            },
        ).json()
        done = finished(user, job["id"])
        with zipfile.ZipFile(io.BytesIO(httpx.get(done["download_url"]).content)) as archive:
            manifest = json.loads(archive.read("export_metadata.json"))
        assert manifest["manifest_version"] == 2
        info = manifest["export_info"]
        assert info["job_key"] == "manifest-1" and info["name"] == "with manifest"
        assert info["format"] == "csv" and info["created_at"].startswith(job["created_at"][:19])
        [entry] = manifest["files"]
        assert {k: entry[k] for k in ("id", "filename", "size", "metadata")} == {
            "id": f["id"],
            "filename": "counts.csv",
            "size": f["size"],
            "metadata": {"organism": "human"},
        }
        assert entry["uploaded_at"][:19] == f["uploaded_at"][:19]
        assert set(manifest["lineage"]) >= {"source_datasets", "pipeline_runs", "processing_steps"}


def _keys(stack: Stack, task_id: str) -> list[str]:
    client = s3_client(stack.infra)
    return sorted(
        str(o.object_name)
        for o in client.list_objects(
            stack.infra.bucket, prefix=f"exports/{task_id}/", recursive=True
        )
    )


def uncompressed(user: httpx.Client, file_ids: list[int]) -> dict[str, object]:
    job = user.post(
        "/api/data-export/jobs",
        json={
            "name": "no zip",
            "file_ids": file_ids,
            "export_format": "parquet",
            "compress": False,
        },
    )
    assert job.status_code == 202, job.text
    done = finished(user, job.json()["id"])
    assert done["status"] == "completed", done
    return done


def test_uncompressed_files_are_each_their_own_artifact(stack: Stack) -> None:
    """Scenario 3 of the seed ("Don't ZIP parquet files"): the converted files
    themselves, each with its own freshly signed link; delete and expiry remove all."""
    with stack.new_user() as user:
        genes = upload(user, "genes.csv", b"gene,count\nBRCA1,12\nTP53,7\n")
        samples = upload(user, "samples.tsv", b"sample\tdepth\nS1\t30\n")
        bad = upload(user, "photo.png", b"\x89PNG\r\n\x1a\n\x00binary")
        done = uncompressed(user, [genes["id"], samples["id"], bad["id"]])
        assert done["download_url"] is None  # no package
        by_name = {f["filename"]: f for f in done["files"]}
        assert by_name["photo.png"]["status"] == "failed"
        assert by_name["photo.png"]["download_url"] is None
        tables = {}
        for name in ("genes.csv", "samples.tsv"):
            entry = by_name[name]
            response = httpx.get(entry["download_url"])
            assert response.status_code == 200
            assert entry["output_name"] in response.headers["content-disposition"]
            assert len(response.content) == entry["size"]
            tables[entry["output_name"]] = pq.read_table(io.BytesIO(response.content)).to_pylist()
        assert tables == {
            "genes.parquet": [{"gene": "BRCA1", "count": 12}, {"gene": "TP53", "count": 7}],
            "samples.parquet": [{"sample": "S1", "depth": 30}],
        }
        assert done["output_size"] == sum(by_name[n]["size"] for n in ("genes.csv", "samples.tsv"))
        stats = user.get("/api/data-export/statistics").json()
        assert stats["total_size_bytes"] == done["output_size"]
        # Keyed by task and position, never by a user-supplied name.
        task_id = str(done["task_id"])
        assert _keys(stack, task_id) == [
            f"exports/{task_id}/files/0.parquet",
            f"exports/{task_id}/files/1.parquet",
        ]
        # Freshly signed on every GET.
        again = user.get(f"/api/data-export/jobs/{done['id']}").json()
        assert all(f["download_url"] for f in again["files"] if f["status"] == "completed")

        # Delete removes every artifact.
        assert user.delete(f"/api/data-export/jobs/{done['id']}").status_code == 204
        assert _keys(stack, task_id) == []
        assert httpx.get(by_name["genes.csv"]["download_url"]).status_code in (403, 404)

        # Expiry too, and links stop being handed out.
        expiring = uncompressed(user, [genes["id"], samples["id"]])
        task_id = str(expiring["task_id"])
        assert len(_keys(stack, task_id)) == 2
        expire_now(stack.infra, int(expiring["id"]))  # type: ignore[call-overload]
        expired = wait_for(
            lambda: (
                (j := user.get(f"/api/data-export/jobs/{expiring['id']}").json())["status"]
                == "expired"
                and j
            ),
            message="the scheduled cleanup",
        )
        assert all(f["download_url"] is None for f in expired["files"])
        assert _keys(stack, task_id) == []


def test_one_uncompressed_file_is_the_job_download(stack: Stack) -> None:
    with stack.new_user() as user:
        f = upload(user, "genes.csv", b"gene,count\nBRCA1,12\n")
        done = uncompressed(user, [f["id"]])
        assert done["download_url"] and done["files"][0]["download_url"] is None
        table = pq.read_table(io.BytesIO(httpx.get(done["download_url"]).content))
        assert table.to_pylist() == [{"gene": "BRCA1", "count": 12}]
