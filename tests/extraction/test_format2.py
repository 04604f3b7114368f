"""The gxformat2 form the extraction service stores beside each `.ga` document."""

from __future__ import annotations

import yaml

from waybill_extraction.format2 import format2_yaml
from waybill_shared.extraction import domain
from waybill_shared.extraction.documents import format2_key, ga_key


def test_format2_of_an_extracted_workflow() -> None:
    graph = domain.ProvenanceGraph()
    graph.datasets[1] = domain.Dataset(1, 1, 1, "reads.txt", "txt", None, None)
    graph.datasets[2] = domain.Dataset(2, 1, 2, "sorted", "txt", None, 5)
    graph.jobs[5] = domain.Job(
        id=5,
        history_id=1,
        tool_id="sort1",
        tool_version="1.0",
        parameters={"column": "1"},
        inputs=(domain.JobIO("input", "hda", 1),),
        outputs=(domain.JobIO("out_file1", "hda", 2),),
    )
    request = domain.ExtractionRequest(
        workflow_name="sort it", job_ids=(5,), hda_ids=(1,), dataset_names=("reads",)
    )
    document = yaml.safe_load(format2_yaml(domain.build_workflow(graph, request)))
    assert document["class"] == "GalaxyWorkflow" and document["label"] == "sort it"
    assert list(document["inputs"]) == ["reads"]
    (step,) = document["steps"]
    assert (step["tool_id"], step["tool_version"]) == ("sort1", "1.0")
    assert step["in"] == {"input": {"source": "reads"}}


def test_both_documents_sit_under_the_task() -> None:
    ga = ga_key("0b7e5f0e-1f7c-4c55-9d0a-0c8a7e4a1d11")
    assert ga == "workflows/0b7e5f0e-1f7c-4c55-9d0a-0c8a7e4a1d11/workflow.ga"
    assert format2_key(ga) == "workflows/0b7e5f0e-1f7c-4c55-9d0a-0c8a7e4a1d11/workflow.gxwf.yml"
