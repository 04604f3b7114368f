"""History exports like Galaxy's task-based exports: tracked, reused while valid,
written short- or long-term, and re-importable into an identical history."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from typing import Any

import asyncpg
import httpx

from support.amqp import publish_command
from support.provenance import Recorder
from support.stack import Stack, s3_client, wait_task

TASK_EXPORT = "application/vnd.galaxy.task.export+json"


def build_history(rec: Recorder) -> dict[str, Any]:
    h = rec.history("to export")
    a = rec.dataset(h, b"alpha\n", "a.txt")
    b = rec.dataset(h, b"beta\n", "b.txt")
    cat = rec.run(
        h, "cat1", {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])}, ["out_file1"]
    )
    pair = rec.paired(h)
    mapped = rec.mapped_over_pair(h, pair["id"], "random_lines1", parameters={"num_lines": 1})
    return {"history": h, "cat": cat, "mapped": mapped, "a": a}


def graph(client: httpx.Client, history_id: int) -> dict[str, Any]:
    """What must survive a round trip: contents, element structure, bytes, jobs."""
    contents = client.get(f"/api/histories/{history_id}/contents").json()
    datasets, collections, jobs = {}, {}, {}
    hid_of: dict[tuple[str, int], int] = {}
    for item in contents:
        hid_of[(item["history_content_type"], item["id"])] = item["hid"]
    for item in contents:
        if item["history_content_type"] == "dataset":
            d = client.get(f"/api/datasets/{item['id']}").json()
            data = client.get(f"/api/files/{d['file_id']}/content").content
            job = d["creating_job_id"]
            if job:
                j = client.get(f"/api/jobs/{job}").json()
                jobs[item["hid"]] = (
                    j["tool_id"],
                    j["parameters"].get("num_lines"),
                    sorted((i["name"], i["src"]) for i in j["inputs"]),
                )
            datasets[item["hid"]] = (d["name"], d["extension"], d["visible"], data, bool(job))
        else:
            c = client.get(f"/api/dataset_collections/{item['id']}").json()
            collections[item["hid"]] = (
                c["name"],
                c["collection_type"],
                bool(c["implicit_collection_jobs_id"]),
                [
                    (e["element_identifier"], hid_of.get(("dataset", e["dataset_id"])))
                    for e in c["elements"]
                ],
            )
    return {"datasets": datasets, "collections": collections, "jobs": jobs}


def test_short_term_export_reuse_listing_and_download(stack: Stack) -> None:
    with stack.new_user() as user, stack.new_user() as other:
        rec = Recorder(user)
        built = build_history(rec)
        h = built["history"]
        first = user.post(
            f"/api/histories/{h}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
        )
        assert first.status_code == 202, first.text
        request_id = first.json()["storage_request_id"]
        assert wait_task(user, first.json()["task_id"]) == "SUCCESS"
        assert user.get(f"/api/short_term_storage/{request_id}/ready").json() is True
        redirect = user.get(f"/api/short_term_storage/{request_id}", follow_redirects=False)
        assert redirect.status_code == 302
        archive = httpx.get(redirect.headers["location"]).content
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            assert "ro-crate-metadata.json" in z.namelist()

        # The same request for the unchanged history: the same export, nothing made.
        again = user.post(
            f"/api/histories/{h}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
        )
        assert again.json()["storage_request_id"] == request_id and again.json()["reused"] is True
        # Another parameter: a new one. A change of the history: a new one.
        other_params = user.post(
            f"/api/histories/{h}/prepare_store_download",
            json={"model_store_format": "rocrate.zip", "include_hidden": True},
        ).json()
        assert other_params["storage_request_id"] != request_id
        rec.dataset(h, b"new\n", "late.txt")
        changed = user.post(
            f"/api/histories/{h}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
        ).json()
        assert changed["storage_request_id"] not in (request_id, other_params["storage_request_id"])
        wait_task(user, changed["task_id"])
        wait_task(user, other_params["task_id"])

        for accept in (TASK_EXPORT, "application/json"):
            records = user.get(f"/api/histories/{h}/exports", headers={"Accept": accept}).json()
            assert len(records) == 3
            assert [r["create_time"] for r in records] == sorted(
                (r["create_time"] for r in records), reverse=True
            )
            newest, _, oldest = records
            assert (
                newest["ready"]
                and newest["up_to_date"]
                and not newest["preparing"]
                and not newest["has_failed"]
            )
            assert oldest["task_uuid"] == request_id and not oldest["up_to_date"]
            meta = oldest["export_metadata"]
            assert (
                meta["request_data"]["object_id"] == h
                and meta["request_data"]["object_type"] == "history"
            )
            assert meta["result_data"]["success"] is True and meta["result_data"]["uri"].startswith(
                "s3://"
            )

        # After expiry, a new export is made (expiry counted from the end of the export).
        asyncio.run(_expire_exports(stack, h))
        after_expiry = user.post(
            f"/api/histories/{h}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
        ).json()
        assert after_expiry["storage_request_id"] != changed["storage_request_id"]
        assert (
            user.get(
                f"/api/short_term_storage/{changed['storage_request_id']}", follow_redirects=False
            ).status_code
            == 409
        )

        # Nobody else sees any of it.
        assert other.get(f"/api/histories/{h}/exports").status_code == 404
        assert other.post(f"/api/histories/{h}/prepare_store_download", json={}).status_code == 404
        assert other.get(f"/api/short_term_storage/{request_id}/ready").status_code == 404
        assert (
            other.get(f"/api/short_term_storage/{request_id}", follow_redirects=False).status_code
            == 404
        )
        assert other.get(f"/api/tasks/{request_id}/state").status_code == 404
        uri = oldest["export_metadata"]["result_data"]["uri"]
        assert (
            other.post(
                "/api/histories/from_store_async", json={"store_content_uri": uri}
            ).status_code
            == 404
        )


async def _expire_exports(stack: Stack, history_id: int) -> None:
    url = stack.infra.database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE export_associations SET expires_at = now() - interval '1 second' WHERE object_id = $1",
            history_id,
        )
        await conn.execute(
            "UPDATE tasks SET expires_at = now() - interval '1 second' WHERE id IN "
            "(SELECT task_id FROM export_associations WHERE object_id = $1)",
            history_id,
        )
    finally:
        await conn.close()


def test_write_store_and_round_trip(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        built = build_history(rec)
        h = built["history"]
        bucket = stack.infra.bucket
        refused = user.post(
            f"/api/histories/{h}/write_store",
            json={
                "target_uri": f"s3://{bucket}/elsewhere/x.tar.gz",
                "model_store_format": "tar.gz",
            },
        )
        assert refused.status_code == 422 and "allowed prefix" in refused.text
        for fmt in ("tar.gz", "rocrate.zip"):
            target = f"s3://{bucket}/remote/history-{h}.{fmt}"
            written = user.post(
                f"/api/histories/{h}/write_store",
                json={"target_uri": target, "model_store_format": fmt},
            )
            assert written.status_code == 202, written.text
            task_id = written.json()["task_id"]
            assert wait_task(user, task_id) == "SUCCESS", user.get(
                f"/api/tasks/{task_id}/result"
            ).text
            assert user.get(f"/api/tasks/{task_id}/result").json()["uri"] == target

            imported = user.post(
                "/api/histories/from_store_async", json={"store_content_uri": target}
            )
            assert imported.status_code == 202
            assert wait_task(user, imported.json()["task_id"]) == "SUCCESS", user.get(
                f"/api/tasks/{imported.json()['task_id']}/result"
            ).text
            new_history = user.get(f"/api/tasks/{imported.json()['task_id']}/result").json()[
                "history_id"
            ]
            assert new_history != h
            assert graph(user, new_history) == graph(user, h), fmt

            # Export the imported history again: the same graph once more.
            again = user.post(
                f"/api/histories/{new_history}/write_store",
                json={
                    "target_uri": f"s3://{bucket}/remote/again-{new_history}.{fmt}",
                    "model_store_format": fmt,
                },
            )
            assert wait_task(user, again.json()["task_id"]) == "SUCCESS"
            second = user.post(
                "/api/histories/from_store_async",
                json={"store_content_uri": f"s3://{bucket}/remote/again-{new_history}.{fmt}"},
            )
            assert wait_task(user, second.json()["task_id"]) == "SUCCESS"
            third = user.get(f"/api/tasks/{second.json()['task_id']}/result").json()["history_id"]
            assert graph(user, third) == graph(user, h)


def test_a_direct_command_cannot_write_over_another_owners_export(stack: Stack) -> None:
    """The gateway refuses another owner's long-term target (409, in the authorization
    matrix); a command published straight to the broker gets the same check in the
    worker: the task fails with the reason and the first owner's archive is untouched."""
    with stack.new_user() as owner, stack.new_user() as intruder:
        target = f"s3://{stack.infra.bucket}/remote/owned-{uuid.uuid4().hex[:8]}.rocrate.zip"
        mine = Recorder(owner).history("mine")
        Recorder(owner).dataset(mine, b"owner's data\n", "owned.txt")
        written = owner.post(
            f"/api/histories/{mine}/write_store",
            json={"target_uri": target, "model_store_format": "rocrate.zip"},
        )
        assert wait_task(owner, written.json()["task_id"]) == "SUCCESS"
        s3 = s3_client(stack.infra)
        key = target.removeprefix(f"s3://{stack.infra.bucket}/")
        before = s3.stat_object(stack.infra.bucket, key).etag

        theirs = Recorder(intruder).history("theirs")
        Recorder(intruder).dataset(theirs, b"intruder's data\n", "other.txt")
        task_id = str(uuid.uuid4())
        command = {
            "task_id": task_id,
            "owner_id": intruder.get("/api/users/me").json()["id"],
            "history_id": theirs,
            "destination": "remote",
            "target_uri": target,
        }
        publish_command(
            stack.infra,
            "history_export.requested",
            json.dumps(command).encode(),
            message_type="waybill.history_export.requested.v1",
            principal=stack.publisher,
        )
        assert wait_task(intruder, task_id) == "FAILURE"
        error = intruder.get(f"/api/tasks/{task_id}/result").json()
        assert "holds another owner's export" in json.dumps(error), error
        assert s3.stat_object(stack.infra.bucket, key).etag == before


ARCHIVES = ("tgz", "tar", "tar.gz", "bag.zip", "bag.tar", "bag.tgz", "rocrate.zip")


def test_every_galaxy_format_exports_and_every_archive_re_imports(stack: Stack) -> None:
    """Galaxy's ModelStoreFormat, all eight, through the stack; from_store_async takes
    Galaxy's CreateHistoryFromStore fields. bco.json is a description: the gateway
    refuses to import it, and so does the worker for a command published directly."""
    with stack.new_user() as user:
        rec = Recorder(user)
        h = build_history(rec)["history"]
        tasks = {}  # all eight at once: the worker takes them in turn
        for fmt in (*ARCHIVES, "bco.json"):
            started = user.post(
                f"/api/histories/{h}/prepare_store_download", json={"model_store_format": fmt}
            )
            assert started.status_code == 202, (fmt, started.text)
            tasks[fmt] = started.json()["task_id"]
        uris: dict[str, str] = {}
        downloads: dict[str, httpx.Response] = {}
        for fmt, task_id in tasks.items():
            assert wait_task(user, task_id) == "SUCCESS", user.get(
                f"/api/tasks/{task_id}/result"
            ).text
            uris[fmt] = user.get(f"/api/tasks/{task_id}/result").json()["uri"]
            download = user.get(f"/api/short_term_storage/{task_id}", follow_redirects=False)
            downloads[fmt] = httpx.get(download.headers["location"])
            content_type = (
                "application/gzip" if fmt.endswith("gz")
                else "application/x-tar" if fmt.endswith("tar")
                else "application/zip" if fmt.endswith("zip")
                else "application/json"
            )  # fmt: skip
            assert downloads[fmt].headers["content-type"] == content_type, fmt
        bco = json.loads(downloads["bco.json"].content)
        assert bco["spec_version"].endswith("2791object.json")
        assert [s["name"] for s in bco["description_domain"]["pipeline_steps"]] == [
            "cat1", "random_lines1", "random_lines1"
        ]  # fmt: skip

        original = graph(user, h)
        imports = {}
        # tar.gz and rocrate.zip also round-trip in test_write_store_and_round_trip.
        for fmt in ("tgz", "tar", "bag.zip", "bag.tar", "bag.tgz"):
            imported = user.post(
                "/api/histories/from_store_async",
                json={
                    "store_content_uri": uris[fmt],
                    "model_store_format": fmt,
                    "store_dict": None,
                },
            )
            assert imported.status_code == 202, (fmt, imported.text)
            imports[fmt] = imported.json()["task_id"]
        for fmt, task_id in imports.items():
            assert wait_task(user, task_id) == "SUCCESS", user.get(
                f"/api/tasks/{task_id}/result"
            ).text
            new_history = user.get(f"/api/tasks/{task_id}/result").json()["history_id"]
            assert graph(user, new_history) == original, fmt

        refusals = [
            ({"store_content_uri": uris["bco.json"]}, "cannot be re-imported"),
            ({"store_content_uri": uris["bco.json"], "model_store_format": "bco.json"}, "cannot be re-imported"),
            ({"store_content_uri": uris["tar"], "model_store_format": "bag.zip"}, "that export is a 'tar'"),
            ({"store_dict": {"datasets": []}}, "store_dict (an inline model store) is not supported"),
            ({"model_store_format": "tar"}, "give store_content_uri"),
            ({"store_content_uri": uris["tar"], "model_store_format": "7z"}, "model_store_format"),
        ]  # fmt: skip
        for body, fragment in refusals:
            refused = user.post("/api/histories/from_store_async", json=body)
            assert refused.status_code == 422 and fragment in refused.text, (body, refused.text)
        # tgz and tar.gz are one format under two names.
        same = user.post(
            "/api/histories/from_store_async",
            json={"store_content_uri": uris["tgz"], "model_store_format": "tar.gz"},
        )
        assert same.status_code == 202
        assert wait_task(user, same.json()["task_id"]) == "SUCCESS"

        # A direct command skips the gateway's check: the worker says why it fails.
        task_id = str(uuid.uuid4())
        publish_command(
            stack.infra,
            "history_import.requested",
            json.dumps(
                {
                    "task_id": task_id,
                    "owner_id": user.get("/api/users/me").json()["id"],
                    "store_content_uri": uris["bco.json"],
                }
            ).encode(),
            message_type="waybill.history_import.requested.v1",
            principal=stack.publisher,
        )
        assert wait_task(user, task_id) == "FAILURE"
        error = user.get(f"/api/tasks/{task_id}/result").json()["error"]
        assert "bco.json" in error and "cannot be re-imported" in error, error


def test_a_history_with_an_extracted_workflow_exports_it(stack: Stack) -> None:
    """The workflow extracted from the history is in the archive, and the RO-Crate is a
    Workflow Run Crate with it as mainEntity and a CreateAction using it."""
    with stack.new_user() as user:
        rec = Recorder(user)
        built = build_history(rec)
        h, cat = built["history"], built["cat"]
        inputs = [i["id"] for i in user.get(f"/api/jobs/{cat['jobs'][0]['id']}").json()["inputs"]]
        extracted = user.post(
            "/api/workflows/extract",
            headers={"Prefer": "wait=30"},
            json={
                "workflow_name": "cat two",
                "from_history_id": h,
                "job_ids": [cat["jobs"][0]["id"]],
                "hda_ids": inputs,
            },
        )
        assert extracted.status_code == 200, extracted.text
        workflow_id = extracted.json()["id"]
        started = user.post(
            f"/api/histories/{h}/prepare_store_download", json={"model_store_format": "rocrate.zip"}
        ).json()
        assert wait_task(user, started["task_id"]) == "SUCCESS"
        location = user.get(
            f"/api/short_term_storage/{started['task_id']}", follow_redirects=False
        ).headers["location"]
        with zipfile.ZipFile(io.BytesIO(httpx.get(location).content)) as z:
            crate = json.loads(z.read("ro-crate-metadata.json"))
            entities = {e["@id"]: e for e in crate["@graph"]}
            main = entities["./"]["mainEntity"]["@id"]
            assert main == f"workflows/{workflow_id}_cat_two.ga"
            document = json.loads(z.read(main))
        assert document == user.get(f"/api/workflows/{workflow_id}").json()["document"]
        run = entities[f"#workflow-run-{workflow_id}"]
        assert run["instrument"] == {"@id": main}
        assert entities[main]["@type"] == ["File", "SoftwareSourceCode", "ComputationalWorkflow"]
