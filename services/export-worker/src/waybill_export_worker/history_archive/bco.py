"""bco.json: a BioCompute Object (IEEE 2791-2020) describing a history. It describes
and holds no file, so it cannot be re-imported.

Each job is a pipeline step (its tool, version, inputs and outputs), its non-data
parameters are the parametric domain, the datasets no job made are the inputs and the
ones jobs made are the outputs. A dataset is named by its content: an RFC 6920 `ni:`
URI of its sha256, the same whichever system holds the bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from waybill_export_worker.history_archive.codec import iso8601
from waybill_export_worker.history_archive.model import HistorySnapshot
from waybill_export_worker.history_archive.rocrate import LICENSE, media_type, tool_repository

SPEC_VERSION = "https://w3id.org/ieee/ieee-2791-schema/2791object.json"
_NS = uuid.UUID("0b7f3f5e-8f52-4c55-9d0b-6f1d2c3e4a57")  # object ids: uuid5 in this space


def ni_uri(sha256_hex: str) -> str:
    """RFC 6920 named information: `ni:///sha-256;<base64url digest, no padding>`."""
    digest = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).rstrip(b"=").decode()
    return f"ni:///sha-256;{digest}"


def biocompute_object(snapshot: HistorySnapshot) -> dict[str, Any]:
    history = snapshot.history
    datasets = {d.id: d for d in snapshot.datasets}
    leaves: dict[tuple[str, int], list[int]] = {}  # (hdca | dce, id) -> dataset ids
    for c in snapshot.collections:
        # Depth first, in element order: the leaves of each element and collection.
        stack = [(e, [("dce", e.id)]) for e in reversed(c.elements)]
        found: list[int] = []
        while stack:
            element, owners = stack.pop()
            if element.dataset_id is not None:
                for owner in owners:
                    leaves.setdefault(owner, []).append(element.dataset_id)
                found.append(element.dataset_id)
            stack.extend(
                (child, [*owners, ("dce", child.id)]) for child in reversed(element.elements)
            )
        leaves[("hdca", c.id)] = found

    def uris(src: str, item: int) -> list[dict[str, str]]:
        ids = [item] if src == "hda" else leaves.get((src, item), [])
        return [
            {"filename": datasets[i].name, "uri": ni_uri(datasets[i].file.sha256)}
            for i in ids
            if i in datasets  # a dataset outside the export: nothing known to name it by
        ]

    steps, parameters, prerequisites = [], [], {}
    for number, job in enumerate(snapshot.jobs, start=1):
        steps.append(
            {
                "step_number": number,
                "name": job.tool_id,
                "description": f"Job {job.id}: {job.tool_id} ({job.state})",
                **({"version": job.tool_version} if job.tool_version else {}),
                "input_list": [u for i in job.inputs for u in uris(i.src, i.id)],
                "output_list": [u for o in job.outputs for u in uris(o.src, o.id)],
            }
        )
        parameters += [
            {"param": name, "value": _text(value), "step": str(number)}
            for name, value in job.parameters.items()
            if not _is_data(value)
        ]
        repository = tool_repository(job.tool_id)
        if repository and job.tool_version:
            prerequisites[(job.tool_id, job.tool_version)] = {
                "name": job.tool_id,
                "version": job.tool_version,
                "uri": {"uri": repository},
            }
    made = {d.id for d in snapshot.datasets if d.creating_job_id is not None}
    core = {
        "provenance_domain": {
            "name": history.name or f"history {history.id}",
            "version": f"1.{history.content_version}",
            "created": iso8601(history.created_at),
            "modified": iso8601(history.update_time),
            "contributors": [
                {"name": history.owner_name or "unknown", "contribution": ["createdBy"]}
            ],
            "license": LICENSE,
        },
        "usability_domain": [
            f"Describes the analysis history {history.name!r}: {len(snapshot.datasets)} "
            f"datasets, {len(snapshot.collections)} collections and {len(snapshot.jobs)} "
            "tool runs, with each run's tool, parameters, inputs and outputs."
        ],
        "description_domain": {
            "keywords": ["Galaxy history", "provenance"],
            "platform": ["Waybill"],
            "pipeline_steps": steps,
        },
        "execution_domain": {
            "script": [],
            "script_driver": "Galaxy tool runs recorded in a history",
            "software_prerequisites": list(prerequisites.values()),
            "external_data_endpoints": [],
            "environment_variables": {},
        },
        "parametric_domain": parameters,
        "io_domain": {
            "input_subdomain": [
                {"uri": u} for d in snapshot.datasets if d.id not in made for u in uris("hda", d.id)
            ],
            "output_subdomain": [
                {"mediatype": media_type(d.extension), "uri": u}
                for d in snapshot.datasets
                if d.id in made
                for u in uris("hda", d.id)
            ],
        },
    }
    canonical = json.dumps(core, sort_keys=True, separators=(",", ":")).encode()
    object_id = uuid.uuid5(
        _NS, f"{history.id}:{history.content_version}:{iso8601(snapshot.exported_at)}"
    )
    return {
        "object_id": f"urn:uuid:{object_id}",
        "spec_version": SPEC_VERSION,
        "etag": hashlib.sha256(canonical).hexdigest(),
        **core,
    }


def _is_data(value: Any) -> bool:
    """A data parameter ({"src": "hda", "id": 3}): an input, not a parameter."""
    return isinstance(value, dict) and "src" in value and "id" in value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
