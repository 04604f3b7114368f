"""ro-crate-metadata.json: an RO-Crate 1.1 conforming to the Process Run Crate profile
(0.5). Datasets are `File` entities; each job is a `CreateAction` with its tool as
`instrument`, its inputs as `object` and its outputs as `result`; collections are
`Dataset`/`Collection` entities whose `hasPart` follows the element tree. A history
that holds workflows extracted from it is also a Workflow Run Crate (0.5): the newest
workflow is the crate's `mainEntity`, and each workflow is the `instrument` of a
`CreateAction` from the inputs its extraction selected to the outputs of its steps.

Every term is schema.org's (through the RO-Crate 1.1 context) except `sha256`, which
the 1.1 context predates: it is schema.org's `sha256` too, mapped in the @context as
the newer RO-Crate contexts map it. What only Waybill needs (flags, source ids, element
identifiers) is in waybill-history.json, which re-import reads."""

from __future__ import annotations

import mimetypes
from typing import Any, NamedTuple
from urllib.parse import quote

from waybill_export_worker.history_archive.codec import iso8601, workflow_member
from waybill_export_worker.history_archive.model import (
    ElementRecord,
    HistorySnapshot,
    WorkflowRecord,
)

RO_CRATE = "https://w3id.org/ro/crate/1.1"
RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
# The one term the 1.1 context lacks; RO-Crate 1.2 and later map it the same way.
EXTRA_TERMS = {"sha256": "http://schema.org/sha256"}
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
GALAXY = "https://w3id.org/workflowhub/workflow-ro-crate#galaxy"
PROFILES = {
    PROCESS_RUN_CRATE: ("Process Run Crate", "0.5"),
    WORKFLOW_RUN_CRATE: ("Workflow Run Crate", "0.5"),
    WORKFLOW_RO_CRATE: ("Workflow RO-Crate", "1.0"),
}
LICENSE = "https://spdx.org/licenses/CC-BY-4.0"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"

_MEDIA = {
    "tabular": "text/tab-separated-values",
    "tsv": "text/tab-separated-values",
    "interval": "text/tab-separated-values",
    "bed": "text/tab-separated-values",
    "vcf": "text/plain",
    "csv": "text/csv",
    "txt": "text/plain",
    "text": "text/plain",
    "json": "application/json",
    "fasta": "text/plain",
    "fastq": "text/plain",
    "fastqsanger": "text/plain",
    "sam": "text/plain",
    "gff": "text/plain",
    "gff3": "text/plain",
    "gtf": "text/plain",
    "bam": "application/octet-stream",
    "fastqsanger.gz": "application/gzip",
    "parquet": "application/vnd.apache.parquet",
    "h5": "application/x-hdf5",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def media_type(extension: str) -> str:
    return _MEDIA.get(extension) or mimetypes.types_map.get(
        f".{extension}", "application/octet-stream"
    )


class ArchivedFile(NamedTuple):
    """A file in the archive: its member name, size and sha256."""

    member: str
    size: int
    sha256: str


def _ref(entity_id: str) -> dict[str, str]:
    return {"@id": entity_id}


def _refs(items: list[dict[str, str]]) -> dict[str, str] | list[dict[str, str]]:
    """RO-Crate 1.1 prefers a single value to a one-item array."""
    return items[0] if len(items) == 1 else items


def tool_repository(tool_id: str) -> str | None:
    """The repository page of a Tool Shed tool (<host>/repos/<owner>/<repo>/<tool>/<v>)."""
    parts = tool_id.split("/")
    if len(parts) >= 4 and parts[1] == "repos" and "." in parts[0] and " " not in tool_id:
        return f"https://{parts[0]}/view/{parts[2]}/{parts[3]}"
    return None


def crate_metadata(
    snapshot: HistorySnapshot,
    dataset_files: dict[int, ArchivedFile],
    workflow_files: dict[int, ArchivedFile],
    snapshot_member: str,
) -> dict[str, Any]:
    """The JSON-LD document. `dataset_files` maps a dataset id to its file in the archive;
    datasets exported without their file are `#dataset-<id>` contextual entities.
    `workflow_files` maps a workflow id to its .ga document in the archive."""
    history = snapshot.history
    paths = {i: f.member for i, f in dataset_files.items()}
    datasets = {d.id: d for d in snapshot.datasets}
    collections = {c.id: c for c in snapshot.collections}
    elements: dict[int, ElementRecord] = {}
    for c in snapshot.collections:
        stack = list(c.elements)
        while stack:
            e = stack.pop()
            elements[e.id] = e
            stack.extend(e.elements)
    outside: dict[str, dict[str, Any]] = {}  # referenced, but not part of this export

    def dataset_id(item: int) -> str:
        if item in paths:
            return paths[item]
        if item not in datasets and f"#dataset-{item}" not in outside:
            outside[f"#dataset-{item}"] = {
                "@id": f"#dataset-{item}",
                "@type": "CreativeWork",
                "name": f"dataset {item} (not part of this export)",
            }
        return f"#dataset-{item}"

    def collection_id(item: int) -> str:
        if item not in collections and f"#collection-{item}" not in outside:
            outside[f"#collection-{item}"] = {
                "@id": f"#collection-{item}",
                "@type": ["Dataset", "Collection"],
                "name": f"collection {item} (not part of this export)",
            }
        return f"#collection-{item}"

    def element_id(item: int) -> str:
        element = elements.get(item)
        if element is not None and element.dataset_id is not None:
            return dataset_id(element.dataset_id)
        if element is None and f"#element-{item}" not in outside:
            outside[f"#element-{item}"] = {
                "@id": f"#element-{item}",
                "@type": ["Dataset", "Collection"],
                "name": f"collection element {item} (not part of this export)",
            }
        return f"#element-{item}"

    def ref(src: str, item: int) -> dict[str, str]:
        if src == "hda":
            return _ref(dataset_id(item))
        if src == "hdca":
            return _ref(collection_id(item))
        return _ref(element_id(item))

    files: list[dict[str, Any]] = []
    without_file: list[dict[str, Any]] = []
    for d in snapshot.datasets:
        entity: dict[str, Any] = {
            "@id": dataset_id(d.id),
            "@type": "File" if d.id in paths else "CreativeWork",
            "name": d.name,
            "encodingFormat": media_type(d.extension),
            "contentSize": str(d.file.size),
            "sha256": d.file.sha256,
            "identifier": f"hid:{d.hid}",
            **(
                {"isBasedOn": _ref(dataset_id(d.copied_from_id))}
                if d.copied_from_id is not None
                else {}
            ),
        }
        if d.id not in paths:
            entity["description"] = "Exported without its file."
        (files if d.id in paths else without_file).append(entity)

    collection_entities: list[dict[str, Any]] = []

    def parts(children: tuple[ElementRecord, ...]) -> list[dict[str, str]]:
        return [
            _ref(dataset_id(e.dataset_id)) if e.dataset_id is not None else _ref(f"#element-{e.id}")
            for e in children
        ]

    for c in snapshot.collections:
        collection_entities.append(
            {
                "@id": collection_id(c.id),
                "@type": ["Dataset", "Collection"],
                "name": c.name,
                "description": f"A {c.collection_type} collection of {len(c.elements)} elements",
                "identifier": f"hid:{c.hid}",
                "hasPart": _refs(parts(c.elements)),
                **(
                    {"isBasedOn": _ref(collection_id(c.copied_from_id))}
                    if c.copied_from_id is not None
                    else {}
                ),
            }
        )
        stack = list(c.elements)
        while stack:
            e = stack.pop(0)
            if e.dataset_id is not None:
                continue
            collection_entities.append(
                {
                    "@id": f"#element-{e.id}",
                    "@type": ["Dataset", "Collection"],
                    "name": e.identifier,
                    "description": f"Element {e.identifier!r} ({e.child_collection_type}) of collection {c.name!r}",
                    "hasPart": _refs(parts(e.elements)),
                }
            )
            stack.extend(e.elements)

    agent: list[dict[str, Any]] = []
    if history.owner_name:
        agent.append({"@id": "#owner", "@type": "Person", "name": history.owner_name})
    tools: dict[str, dict[str, Any]] = {}
    actions: list[dict[str, Any]] = []
    for j in snapshot.jobs:
        tool = "#tool-" + quote(f"{j.tool_id}@{j.tool_version or ''}", safe="")
        tools.setdefault(
            tool,
            {
                "@id": tool,
                "@type": "SoftwareApplication",
                "name": j.tool_id,
                "identifier": j.tool_id,
                **({"softwareVersion": j.tool_version} if j.tool_version else {}),
                **({"url": url} if (url := tool_repository(j.tool_id)) else {}),
            },
        )
        action: dict[str, Any] = {
            "@id": f"#job-{j.id}",
            "@type": "CreateAction",
            "name": f"Run of {j.tool_id}",
            "description": f"Job {j.id}: {j.tool_id} {j.tool_version or ''}".rstrip(),
            "instrument": _ref(tool),
            "startTime": iso8601(j.created_at),
            "object": _refs([ref(i.src, i.id) for i in j.inputs]),
            "result": _refs([ref(o.src, o.id) for o in j.outputs]),
        }
        if j.state == "ok":
            action["actionStatus"] = COMPLETED
        elif j.state in ("error", "failed"):
            action["actionStatus"] = FAILED
        if agent:
            action["agent"] = _ref("#owner")
        actions.append(action)

    # Newest first: the first is the crate's mainEntity.
    extracted = sorted(
        (w for w in snapshot.workflows if w.id in workflow_files),
        key=lambda w: (w.created_at, w.id),
        reverse=True,
    )
    workflows = [_workflow_entity(w, workflow_files[w.id]) for w in extracted]
    workflow_runs = [_workflow_run(w, snapshot, ref, agent=bool(agent)) for w in extracted]

    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": history.name or f"history {history.id}",
        "description": (
            f"History {history.name!r} exported by Waybill: {len(snapshot.datasets)} datasets, "
            f"{len(snapshot.collections)} collections, {len(snapshot.jobs)} jobs."
        ),
        "datePublished": iso8601(snapshot.exported_at),
        "dateModified": iso8601(history.update_time),
        "license": _ref(LICENSE),
        "hasPart": _refs(
            [_ref(f["@id"]) for f in files]
            + [_ref(w["@id"]) for w in workflows]
            + [_ref(snapshot_member)]
        ),
        "mentions": _refs(
            [_ref(a["@id"]) for a in (*workflow_runs, *actions)]
            + [_ref(c["@id"]) for c in collection_entities]
        ),
    }
    profiles = [PROCESS_RUN_CRATE]
    if workflows:
        profiles += [WORKFLOW_RUN_CRATE, WORKFLOW_RO_CRATE]
        root["mainEntity"] = _ref(workflows[0]["@id"])
    root["conformsTo"] = _refs([_ref(p) for p in profiles])
    return {
        "@context": [RO_CRATE_CONTEXT, EXTRA_TERMS],
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "conformsTo": _refs(
                    [_ref(RO_CRATE), *([_ref(WORKFLOW_RO_CRATE)] if workflows else [])]
                ),
                "about": _ref("./"),
            },
            root,
            *(
                {
                    "@id": p,
                    "@type": "CreativeWork",
                    "name": PROFILES[p][0],
                    "version": PROFILES[p][1],
                }
                for p in profiles
            ),
            {"@id": LICENSE, "@type": "CreativeWork", "name": "CC BY 4.0"},
            {
                "@id": snapshot_member,
                "@type": "File",
                "name": "Waybill history snapshot",
                "encodingFormat": "application/json",
                "description": "Everything needed to re-import the history exactly "
                "(see HISTORY_ARCHIVE.md).",
            },
            *agent,
            *files,
            *without_file,
            *collection_entities,
            *outside.values(),
            *tools.values(),
            *actions,
            *workflows,
            *([GALAXY_LANGUAGE] if workflows else []),
            *workflow_runs,
        ],
    }


GALAXY_LANGUAGE = {
    "@id": GALAXY,
    "@type": "ComputerLanguage",
    "name": "Galaxy",
    "identifier": {"@id": "https://galaxyproject.org/"},
    "url": {"@id": "https://galaxyproject.org/"},
}


def _workflow_entity(workflow: WorkflowRecord, stored: ArchivedFile) -> dict[str, Any]:
    return {
        "@id": stored.member,
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
        "name": workflow.name,
        "description": "A Galaxy workflow (.ga) extracted from this history.",
        "programmingLanguage": _ref(GALAXY),
        "version": "1",  # the .ga document's own version: an extraction is its first
        "encodingFormat": "application/json",
        "contentSize": str(stored.size),
        "sha256": stored.sha256,
        "dateCreated": iso8601(workflow.created_at),
    }


def _workflow_run(
    workflow: WorkflowRecord,
    snapshot: HistorySnapshot,
    ref: Any,
    *,
    agent: bool,
) -> dict[str, Any]:
    """The workflow as run in this history: from the inputs its extraction selected to
    what its steps (the selected jobs and mapped runs) made, over their time span."""
    groups = set(workflow.implicit_collection_jobs_ids)
    steps = [
        j
        for j in snapshot.jobs
        if j.id in workflow.job_ids or j.implicit_collection_jobs_id in groups
    ]
    outputs = [
        ref(o.src, o.id) for j in steps if j.implicit_collection_jobs_id is None for o in j.outputs
    ] + [ref("hdca", c.id) for c in snapshot.collections if c.implicit_collection_jobs_id in groups]
    run: dict[str, Any] = {
        "@id": f"#workflow-run-{workflow.id}",
        "@type": "CreateAction",
        "name": f"Run of workflow {workflow.name}",
        "description": f"Workflow {workflow.id}, {workflow.name!r}, as its steps ran in this history",
        "instrument": _ref(workflow_member(workflow)),
        "object": _refs(
            [ref("hda", i) for i in workflow.hda_ids] + [ref("hdca", i) for i in workflow.hdca_ids]
        ),
        "result": _refs(outputs),
    }
    if steps:
        run["startTime"] = min(iso8601(j.created_at) for j in steps)  # UTC: sortable
    if agent:
        run["agent"] = _ref("#owner")
    return {k: v for k, v in run.items() if v != []}
