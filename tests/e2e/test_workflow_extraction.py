"""Workflow extraction through the whole stack: gateway (validation, Prefer: wait),
extraction service, S3, tracker; the legacy HID form and the extraction summary."""

from __future__ import annotations

import json
from typing import Any

import yaml

from support.provenance import Recorder
from support.stack import Stack, wait_for


def extract(client: Any, body: dict[str, Any], wait: int = 30) -> dict[str, Any]:
    response = client.post("/api/workflows/extract", json=body, headers={"Prefer": f"wait={wait}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "completed", result
    return result


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
        assert [j["tool_id"] for j in summary["jobs"]] == ["sort1"]
        assert summary["jobs"][0]["outputs"][0]["hid"] == run["outputs"][0]["hid"]
        assert [i["id"] for i in summary["inputs"]] == [copy["id"]]


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
