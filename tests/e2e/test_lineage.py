"""include_lineage: the manifest says which jobs, tools, parameters and inputs made
each exported dataset, transitively, through copies, collections and mapped runs."""

from __future__ import annotations

import io
import json
import zipfile

import httpx

from support.provenance import Recorder
from support.stack import Stack, finished


def test_lineage_in_the_manifest(stack: Stack) -> None:
    with stack.new_user() as user:
        rec = Recorder(user)
        h = rec.history()
        raw = rec.dataset(h, b"x\n", "raw.txt")
        trimmed = rec.run(h, "trim", {"input": ("hda", raw["id"])}, ["out"], {"quality": 20})
        t_out = trimmed["outputs"][0]
        pair = rec.paired(h)
        mapped = rec.job(
            {
                "history_id": h,
                "tool_id": "align",
                "inputs": [
                    {"name": "reads", "src": "hdca", "id": pair["id"]},
                    {"name": "ref", "src": "hda", "id": t_out["id"]},
                ],
                "map_over": [{"name": "reads", "id": pair["id"]}],
                "outputs": [
                    {
                        "name": "bam",
                        "elements": [
                            {"identifier": "forward", "file_id": rec.file()},
                            {"identifier": "reverse", "file_id": rec.file()},
                        ],
                    }
                ],
            }
        )
        merged = rec.run(
            h, "merge", {"inputs": ("hdca", mapped["output_collections"][0]["id"])}, ["merged"]
        )
        final = merged["outputs"][0]
        other_history = rec.history("copy target")
        copy = rec.content(other_history, {"src": "hda", "id": final["id"]})

        job = user.post(
            "/api/data-export/jobs",
            json={
                "name": "with lineage",
                "dataset_ids": [copy["id"]],
                "export_format": "zip",
                "include_lineage": True,
            },
        ).json()
        done = finished(user, job["id"])
        assert done["status"] == "completed", done
        with zipfile.ZipFile(io.BytesIO(httpx.get(done["download_url"]).content)) as archive:
            manifest = json.loads(archive.read("export_metadata.json"))
        assert manifest["manifest_version"] == 2
        lineage = manifest["lineage"]
        # The seed's three lists, then ours beside them.
        assert list(lineage)[:3] == ["source_datasets", "pipeline_runs", "processing_steps"]
        runs = {run["id"]: run for run in lineage["pipeline_runs"]}
        datasets = {d["id"]: d for d in lineage["source_datasets"]}
        step = lineage["processing_steps"][0]
        assert step["dataset_id"] == copy["id"]
        merge_job = merged["jobs"][0]["id"]
        assert step["produced_by"] == [merge_job]
        trim_job = trimmed["jobs"][0]["id"]
        mapped_jobs = [j["id"] for j in mapped["jobs"]]
        assert set(step["pipeline_runs"]) == {merge_job, trim_job, *mapped_jobs} == set(runs)
        # In the order they ran: trim, then the mapped alignments, then the merge.
        order = step["pipeline_runs"]
        assert order.index(trim_job) < min(map(order.index, mapped_jobs))
        assert order[-1] == merge_job
        assert runs[trim_job]["parameters"]["quality"] == 20
        assert runs[trim_job]["tool_id"] == "trim"
        assert runs[trim_job]["inputs"] == [{"name": "input", "src": "hda", "id": raw["id"]}]
        assert datasets[copy["id"]]["copied_from_id"] == final["id"]
        assert raw["id"] in datasets and datasets[raw["id"]]["creating_job_id"] is None
        mapped_output = mapped["output_collections"][0]["id"]
        assert [c["id"] for c in lineage["collections"]] == [mapped_output]
