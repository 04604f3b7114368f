"""What to extract when the user names only a history: everything its extraction
summary lists, as Galaxy's form starts with every box checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Selection:
    job_ids: list[int] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)  # mapped runs (implicit collection jobs)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hda_ids(self) -> list[int]:
        return [i["id"] for i in self.inputs if i["history_content_type"] == "dataset"]

    @property
    def hdca_ids(self) -> list[int]:
        return [i["id"] for i in self.inputs if i["history_content_type"] == "dataset_collection"]


def summary_selection(summary: dict[str, Any]) -> Selection:
    """Reads both summary shapes. TODO(merge): today's {jobs, inputs}; Galaxy's
    WorkflowExtractionSummary (contract-galaxy) lists inputs as jobs entries with a
    step_type input_dataset / input_collection whose outputs are the inputs."""
    selection = Selection()
    for entry in summary.get("jobs") or []:
        if entry.get("step_type", "tool") != "tool":
            selection.inputs.extend(entry.get("outputs") or [])
        elif entry.get("implicit_collection_jobs_id") is not None:
            selection.group_ids.append(entry["implicit_collection_jobs_id"])
        elif entry.get("id") is not None:
            selection.job_ids.append(entry["id"])
    selection.inputs.extend(summary.get("inputs") or [])
    return selection
