"""The CLI reads the API's shapes that are changing in parallel branches (list answers,
the extraction summary, the extraction result) in both forms: pure functions, fast."""

from __future__ import annotations

import httpx

from waybill_cli.client import Page, page_of
from waybill_cli.extraction import Selection, request_body, summary_selection, workflow_id


def test_a_list_is_read_as_an_array_with_its_total_header() -> None:
    jobs = [{"id": 2}, {"id": 1}]
    assert page_of(httpx.Response(200, json=jobs, headers={"X-Total-Count": "7"})) == Page(jobs, 7)
    assert page_of(httpx.Response(200, json=jobs)) == Page(jobs, None)


def test_the_extraction_summary_is_read_in_both_shapes() -> None:
    today = {
        "history_id": 1,
        "jobs": [
            {"id": 10, "implicit_collection_jobs_id": None, "outputs": []},
            {"id": None, "implicit_collection_jobs_id": 3, "outputs": []},
        ],
        "inputs": [
            {"id": 5, "hid": 1, "history_content_type": "dataset"},
            {"id": 2, "hid": 4, "history_content_type": "dataset_collection"},
        ],
    }
    galaxy = {
        "history_id": 1,
        "warnings": [],
        "jobs": [
            {
                "id": None,
                "step_type": "input_dataset",
                "outputs": [{"id": 5, "hid": 1, "history_content_type": "dataset"}],
            },
            {
                "id": None,
                "step_type": "input_collection",
                "outputs": [{"id": 2, "hid": 4, "history_content_type": "dataset_collection"}],
            },
            {"id": 10, "step_type": "tool", "implicit_collection_jobs_id": None, "outputs": []},
            # A mapped run: Galaxy names one member job; the group is what extracts.
            {"id": 11, "step_type": "tool", "implicit_collection_jobs_id": 3, "outputs": []},
        ],
    }
    expected = Selection(job_ids=[10], group_ids=[3], hda_ids=[5], hdca_ids=[2])
    assert summary_selection(today) == summary_selection(galaxy) == expected


def test_the_request_and_the_result() -> None:
    body = request_body(
        Selection(job_ids=[1], hda_ids=[2]),
        history_id=None,
        workflow_name=None,
        dataset_names=["reads"],
        collection_names=[],
    )
    assert body["workflow_name"] == "Extracted workflow" and "from_history_id" not in body
    assert (body["job_ids"], body["hda_ids"], body["dataset_names"]) == ([1], [2], ["reads"])
    assert not Selection() and Selection(hdca_ids=[1])
    assert workflow_id({"task_id": "t", "status": "completed", "workflow_id": 4}) == 4
    assert workflow_id({"id": 4, "task_id": "t"}) == 4
    assert workflow_id({"task_id": "t", "status": "processing", "workflow_id": None}) is None
