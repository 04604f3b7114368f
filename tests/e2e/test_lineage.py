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
        lineage = manifest["lineage"]
        item = lineage["items"][0]
        assert item["dataset_id"] == copy["id"]
        merge_job = merged["jobs"][0]["id"]
        assert item["produced_by"] == [merge_job]
        expected = {merge_job, trimmed["jobs"][0]["id"], *(j["id"] for j in mapped["jobs"])}
        assert set(item["jobs"]) == expected
        assert lineage["jobs"][str(trimmed["jobs"][0]["id"])]["parameters"]["quality"] == 20
        assert lineage["jobs"][str(trimmed["jobs"][0]["id"])]["tool_id"] == "trim"
        assert lineage["datasets"][str(copy["id"])]["copied_from_id"] == final["id"]
