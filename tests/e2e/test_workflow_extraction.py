"""Workflow extraction through the whole stack: gateway (validation, Prefer: wait),
extraction service, S3, tracker; the legacy HID form and the extraction summary."""

from __future__ import annotations

import io
import json
from typing import Any

import yaml

from support.provenance import Recorder
from support.stack import Stack, s3_client, wait_for


def extract(client: Any, body: dict[str, Any], wait: int = 30) -> dict[str, Any]:
    response = client.post("/api/workflows/extract", json=body, headers={"Prefer": f"wait={wait}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "completed", result
    return result


def extract_one_sort(client: Any, name: str) -> dict[str, Any]:
    """A history with one dataset sorted once, extracted as workflow `name`."""
    rec = Recorder(client)
    h = rec.history()
    a = rec.dataset(h)
    run = rec.run(h, "sort1", {"input": ("hda", a["id"])}, ["out"])
    return extract(
        client, {"workflow_name": name, "job_ids": [run["jobs"][0]["id"]], "hda_ids": [a["id"]]}
    )


def test_cat1_two_inputs_end_to_end(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        a, b = rec.dataset(h, b"a\n", "a.txt"), rec.dataset(h, b"b\n", "b.txt")
        run = rec.run(
            h,
            "cat1",
            {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])},
            ["out_file1"],
        )
        result = extract(
            user,
            {
                "workflow_name": "cat twice",
                "from_history_id": h,
                "job_ids": [run["jobs"][0]["id"]],
                "hda_ids": [a["id"], b["id"]],
                "dataset_names": ["first", "second"],
            },
        )
        workflow = user.get(f"/api/workflows/{result['workflow_id']}").json()
        document = workflow["document"]
        assert document["a_galaxy_workflow"] == "true" and document["format-version"] == "0.1"
        steps = document["steps"]
        assert len(steps) == 3
        tool = next(s for s in steps.values() if s["type"] == "tool")
        assert tool["tool_id"] == "cat1"
        connected = {
            name: conn[0]["id"] if isinstance(conn, list) else conn["id"]
            for name, conn in tool["input_connections"].items()
        }
        inputs = {s["id"]: s for s in steps.values() if s["type"] == "data_input"}
        assert set(connected) == {"input1", "queries_0|input2"}
        assert {
            inputs[connected["input1"]]["label"],
            inputs[connected["queries_0|input2"]]["label"],
        } == {"first", "second"}
        ga = user.get(f"/api/workflows/{result['workflow_id']}/download", params={"format": "ga"})
        assert json.loads(ga.content)["steps"].keys() == steps.keys()
        format2 = yaml.safe_load(
            user.get(
                f"/api/workflows/{result['workflow_id']}/download", params={"format": "format2"}
            ).content
        )
        assert format2["class"] == "GalaxyWorkflow"

        # The task API follows it too.
        assert user.get(f"/api/tasks/{result['task_id']}/state").json() == "SUCCESS"
        assert (
            user.get(f"/api/tasks/{result['task_id']}/result").json()["workflow_id"]
            == result["workflow_id"]
        )


def test_gxformat2_is_made_by_the_extraction_and_served_as_stored(stack: Stack) -> None:
    """The extraction service stores the gxformat2 form beside the .ga when it
    extracts; the gateway serves the stored object and makes nothing."""
    with stack.new_user() as user:
        result = extract_one_sort(user, "sorted")
        s3 = s3_client(stack.infra)
        prefix = f"workflows/{result['task_id']}/"
        # Both documents exist before anyone downloaded either.
        stored = sorted(
            str(o.object_name)
            for o in s3.list_objects(stack.infra.bucket, prefix=prefix, recursive=True)
        )
        assert stored == [prefix + "workflow.ga", prefix + "workflow.gxwf.yml"]
        made = s3.get_object(stack.infra.bucket, prefix + "workflow.gxwf.yml").read()
        document = yaml.safe_load(made)
        assert document["class"] == "GalaxyWorkflow" and document["label"] == "sorted"
        assert [step["tool_id"] for step in document["steps"]] == ["sort1"]

        url = f"/api/workflows/{result['workflow_id']}/download"
        download = user.get(url, params={"format": "format2"})
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("application/x-yaml")
        assert download.content == made
        # What is stored is what is served: a changed object is answered as it is.
        marker = made + b"# served from storage\n"
        s3.put_object(
            stack.infra.bucket, prefix + "workflow.gxwf.yml", io.BytesIO(marker), len(marker)
        )
        assert user.get(url, params={"format": "format2"}).content == marker


def test_a_workflow_stored_without_gxformat2_gets_it_when_extraction_starts(
    stack: Stack,
) -> None:
    """Workflows extracted before the extraction service made gxformat2 (the gateway
    made it on first download) still download in both forms: a starting extraction
    service makes what is missing."""
    with stack.new_user() as user:
        result = extract_one_sort(user, "older")
        s3 = s3_client(stack.infra)
        key = f"workflows/{result['task_id']}/workflow.gxwf.yml"
        s3.remove_object(stack.infra.bucket, key)
        url = f"/api/workflows/{result['workflow_id']}/download"
        assert user.get(url, params={"format": "format2"}).status_code == 410

        extraction = stack.infra.service("extraction").start()
        try:
            extraction.wait_ready()
            made = wait_for(
                lambda: (r := user.get(url, params={"format": "format2"})).status_code == 200 and r,
                message="the gxformat2 document made at start",
            )
        finally:
            extraction.terminate()
        assert yaml.safe_load(made.content)["label"] == "older"
        assert s3.stat_object(stack.infra.bucket, key).content_type == "application/x-yaml"


def test_without_wait_answers_202_then_completes(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        a = rec.dataset(h)
        run = rec.run(h, "sort1", {"input": ("hda", a["id"])}, ["out"])
        accepted = user.post(
            "/api/workflows/extract",
            json={"workflow_name": "w", "job_ids": [run["jobs"][0]["id"]], "hda_ids": [a["id"]]},
        )
        assert accepted.status_code == 202
        task_id = accepted.json()["task_id"]
        wait_for(
            lambda: user.get(f"/api/tasks/{task_id}/state").json() == "SUCCESS",
            message="extraction",
        )


def test_copied_inputs_across_histories_and_legacy_form(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        first = rec.history("origin")
        a = rec.dataset(first, b"a\n", "a.txt")
        second = rec.history("analysis")
        copy = rec.content(second, {"src": "hda", "id": a["id"]})
        run = rec.run(second, "sort1", {"input": ("hda", copy["id"])}, ["out"])
        # Pre-copy id, no from_history_id: the copy connects through copied_from.
        result = extract(
            user,
            {"workflow_name": "pre-copy", "job_ids": [run["jobs"][0]["id"]], "hda_ids": [a["id"]]},
        )
        steps = user.get(f"/api/workflows/{result['workflow_id']}").json()["document"]["steps"]
        tool = next(s for s in steps.values() if s["type"] == "tool")
        assert tool["input_connections"], steps
        # The legacy form by HIDs.
        legacy = user.post(
            f"/api/histories/{second}/extract_workflow",
            headers={"Prefer": "wait=30"},
            json={
                "workflow_name": "legacy",
                "job_ids": [run["jobs"][0]["id"]],
                "dataset_hids": [copy["hid"]],
                "dataset_names": ["the input"],
            },
        )
        assert legacy.status_code == 200 and legacy.json()["status"] == "completed", legacy.text
        doc = user.get(f"/api/workflows/{legacy.json()['workflow_id']}").json()["document"]
        assert any(s.get("label") == "the input" for s in doc["steps"].values())

        summary = user.get(f"/api/histories/{second}/extraction_summary").json()
        copied_input, sort = summary["jobs"]
        assert (copied_input["id"], copied_input["step_type"]) == (None, "input_dataset")
        assert copied_input["tool_name"] == "Import from History"
        assert [o["id"] for o in copied_input["outputs"]] == [copy["id"]]
        assert (sort["tool_id"], sort["id"]) == ("sort1", run["jobs"][0]["id"])
        assert sort["outputs"][0]["hid"] == run["outputs"][0]["hid"]


def test_rejections_are_4xx_naming_the_item(stack: Stack) -> None:
    with stack.new_user() as user, stack.new_user() as other:
        rec = Recorder(user)
        h = rec.history()
        a = rec.dataset(h)
        run = rec.run(h, "sort1", {"input": ("hda", a["id"])}, ["out"])
        job = run["jobs"][0]["id"]
        cases = [
            ({"workflow_name": "w"}, 422, "at least one"),
            ({"workflow_name": "w", "job_ids": [999999]}, 404, "job 999999"),
            ({"workflow_name": "w", "job_ids": [job, job]}, 422, str(job)),
            ({"workflow_name": "w", "hda_ids": [a["id"]], "dataset_names": [""]}, 422, "name"),
        ]
        for body, status, fragment in cases:
            response = user.post("/api/workflows/extract", json=body)
            assert response.status_code == status, (body, response.text)
            assert fragment in response.text, (body, response.text)
        foreign = other.post(
            "/api/workflows/extract", json={"workflow_name": "w", "job_ids": [job]}
        )
        assert foreign.status_code == 404 and f"job {job} not found" in foreign.text
        assert other.get(f"/api/histories/{h}/extraction_summary").status_code == 404


def test_a_request_naming_more_ids_than_a_query_has_parameters(stack: Stack) -> None:
    """asyncpg allows 32,767 parameters per query; ids travel as one array, so 40,000
    job ids are checked like 4 (here: the first unknown one is named, 404)."""
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        a = rec.dataset(h)
        run = rec.run(h, "sort1", {"input": ("hda", a["id"])}, ["out"])
        ids = [run["jobs"][0]["id"], *range(10_000_000, 10_040_000)]
        response = user.post("/api/workflows/extract", json={"workflow_name": "w", "job_ids": ids})
        assert response.status_code == 404, response.text[:300]
        assert response.json()["detail"] == "job 10000000 not found"


def test_galaxy_basic_case_two_uploads_named_alike_without_names(stack: Stack) -> None:
    """Two pasted uploads (Galaxy names both "Pasted Entry") into cat1, extracted without
    dataset_names: inputs get default names, a label only where unique. The answer is
    Galaxy's WorkflowExtractionResult, `id`, beside the task fields. Names the caller
    gives twice stay a 422."""
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        a = rec.dataset(h, b"1 2 3\n", "Pasted Entry")
        b = rec.dataset(h, b"4 5 6\n", "Pasted Entry")
        run = rec.run(
            h,
            "cat1",
            {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])},
            ["out_file1"],
        )
        body = {
            "workflow_name": "from uploads",
            "from_history_id": h,
            "job_ids": [run["jobs"][0]["id"]],
            "hda_ids": [a["id"], b["id"]],
        }
        result = extract(user, body)
        assert result["id"] == result["workflow_id"] is not None
        document = user.get(f"/api/workflows/{result['id']}").json()["document"]
        inputs = [s for s in document["steps"].values() if s["type"] == "data_input"]
        assert [s["label"] for s in inputs] == ["Pasted Entry", None]

        twice = user.post(
            "/api/workflows/extract", json={**body, "dataset_names": ["same", "same"]}
        )
        assert twice.status_code == 422 and "'same'" in twice.text, twice.text
        # Without Prefer: wait the task is accepted; `id` comes once it is done.
        accepted = user.post("/api/workflows/extract", json=body)
        assert accepted.status_code == 202 and accepted.json()["id"] is None


def test_extraction_summary_is_galaxys_workflow_extraction_summary(stack: Stack) -> None:
    """Galaxy's shape, exactly: jobs and input entries in history order, a mapped run
    once (as its first job, with its group and size), collection elements that are
    hidden represented by their collection, inputs as entries with a null id."""
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        a = rec.dataset(h, b"a\n", "a.txt")
        b = rec.dataset(h, b"b\n", "b.txt")
        cat = rec.run(
            h,
            "cat1",
            {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])},
            ["out_file1"],
        )
        pair = rec.paired(h)
        mapped = rec.mapped_over_pair(h, pair["id"], "random_lines1", tool_version="2.0")
        summary = user.get(f"/api/histories/{h}/extraction_summary")
        assert summary.status_code == 200, summary.text
        data = summary.json()
        assert set(data) == {"history_id", "warnings", "jobs"}
        assert (data["history_id"], data["warnings"]) == (h, [])
        job_keys = {
            "id", "step_type", "tool_id", "tool_name", "tool_version", "checked",
            "tool_version_warning", "outputs", "implicit_collection_jobs_id",
            "implicit_collection_jobs_size",
        }  # fmt: skip
        assert all(set(j) == job_keys for j in data["jobs"])

        def out(item: dict[str, Any], output_name: str | None = None) -> dict[str, Any]:
            return {
                "id": item["id"],
                "hid": item["hid"],
                "name": item["name"],
                "state": "ok",
                "deleted": False,
                "history_content_type": item["history_content_type"],
                "output_name": output_name,
            }

        def entry(step_type: str, outputs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
            return {
                "id": None, "step_type": step_type, "tool_id": None, "tool_name": None,
                "tool_version": None, "checked": True, "tool_version_warning": None,
                "outputs": outputs, "implicit_collection_jobs_id": None,
                "implicit_collection_jobs_size": None, **fields,
            }  # fmt: skip

        contents = {c["id"]: c for c in user.get(f"/api/histories/{h}/contents").json()}
        forward, reverse = (
            contents[e["dataset_id"]]
            for e in user.get(f"/api/dataset_collections/{pair['id']}").json()["elements"]
        )
        implicit = mapped["output_collections"][0]
        tool = {"tool_id": "cat1", "tool_name": "cat1", "tool_version": "1.0.0"}
        assert data["jobs"] == [
            entry("input_dataset", [out(a)]),
            entry("input_dataset", [out(b)]),
            entry("tool", [out(cat["outputs"][0], "out_file1")], id=cat["jobs"][0]["id"], **tool),
            entry("input_dataset", [out(forward)]),
            entry("input_dataset", [out(reverse)]),
            entry("input_collection", [out(pair)], tool_name="Dataset Collection Creation"),
            entry(
                "tool",
                [out(implicit, "out_file1")],
                id=min(j["id"] for j in mapped["jobs"]),
                tool_id="random_lines1",
                tool_name="random_lines1",
                tool_version="2.0",
                implicit_collection_jobs_id=mapped["implicit_collection_jobs_id"],
                implicit_collection_jobs_size=2,
            ),
        ]
