"""The extraction request the CLI sends: the ids the user gave, or, when they named only
a history, everything its extraction summary lists (as Galaxy's form starts with every
box checked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Selection:
    job_ids: list[int] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)  # mapped runs (implicit collection jobs)
    hda_ids: list[int] = field(default_factory=list)
    hdca_ids: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.job_ids or self.group_ids or self.hda_ids or self.hdca_ids)


def summary_inputs(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The history's inputs, from either summary shape. TODO(merge): today's {jobs,
    inputs}; Galaxy's WorkflowExtractionSummary (contract-galaxy) lists them as jobs
    entries with step_type input_dataset / input_collection, the inputs as outputs."""
    inputs = [
        output
        for entry in summary.get("jobs") or []
        if entry.get("step_type", "tool") != "tool"
        for output in entry.get("outputs") or []
    ]
    return inputs + list(summary.get("inputs") or [])


def summary_selection(summary: dict[str, Any]) -> Selection:
    selection = Selection()
    for entry in summary.get("jobs") or []:
        if entry.get("step_type", "tool") != "tool":
            continue
        if entry.get("implicit_collection_jobs_id") is not None:
            selection.group_ids.append(entry["implicit_collection_jobs_id"])
        elif entry.get("id") is not None:
            selection.job_ids.append(entry["id"])
    for item in summary_inputs(summary):
        kind = item["history_content_type"]
        (selection.hda_ids if kind == "dataset" else selection.hdca_ids).append(item["id"])
    return selection


def request_body(
    selection: Selection,
    *,
    history_id: int | None,
    workflow_name: str | None,
    dataset_names: list[str],
    collection_names: list[str],
) -> dict[str, Any]:
    """The body of POST /api/workflows/extract."""
    default_name = (
        f"Workflow from history {history_id}" if history_id is not None else "Extracted workflow"
    )
    body: dict[str, Any] = {
        "workflow_name": workflow_name or default_name,
        "job_ids": selection.job_ids,
        "implicit_collection_jobs_ids": selection.group_ids,
        "hda_ids": selection.hda_ids,
        "hdca_ids": selection.hdca_ids,
        "dataset_names": dataset_names,
        "dataset_collection_names": collection_names,
    }
    if history_id is not None:
        body["from_history_id"] = history_id
    return body


def workflow_id(answer: dict[str, Any]) -> int | None:
    """The workflow an extraction made, from its answer or its task's result. TODO(merge):
    contract-galaxy adds Galaxy's WorkflowExtractionResult {id} beside workflow_id."""
    value = answer.get("workflow_id", answer.get("id"))
    return int(value) if value is not None else None
