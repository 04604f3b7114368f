"""ro-crate-metadata.json: an RO-Crate 1.1 conforming to the Process Run Crate profile
(0.5). Datasets are `File` entities; each job is a `CreateAction` with its tool as
`instrument`, its inputs as `object` and its outputs as `result`; collections are
`Dataset`/`Collection` entities whose `hasPart` follows the element tree. Waybill's own
properties (hid, flags, source ids) use the `waybill:` prefix added to the context.
The crate is for standard tools; re-import reads waybill-history.json."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from waybill_export_worker.history_archive.codec import iso8601
from waybill_export_worker.history_archive.model import ElementRecord, HistorySnapshot

RO_CRATE = "https://w3id.org/ro/crate/1.1"
RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WAYBILL = "https://waybill.example/terms#"
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


def _ref(entity_id: str) -> dict[str, str]:
    return {"@id": entity_id}


def _refs(items: list[dict[str, str]]) -> dict[str, str] | list[dict[str, str]]:
    """RO-Crate 1.1 prefers a single value to a one-item array."""
    return items[0] if len(items) == 1 else items


def _tool_url(tool_id: str) -> dict[str, str]:
    """The repository page of a Tool Shed tool (<host>/repos/<owner>/<repo>/<tool>/<v>)."""
    parts = tool_id.split("/")
    if len(parts) >= 4 and parts[1] == "repos" and "." in parts[0] and " " not in tool_id:
        return {"url": f"https://{parts[0]}/view/{parts[2]}/{parts[3]}"}
    return {}


def crate_metadata(
    snapshot: HistorySnapshot, paths: dict[int, str], snapshot_member: str
) -> dict[str, Any]:
    """The JSON-LD document. `paths` maps a dataset id to its member in the archive;
    datasets exported without their file are `#dataset-<id>` contextual entities."""
    history = snapshot.history
    datasets = {d.id: d for d in snapshot.datasets}
    collections = {c.id: c for c in snapshot.collections}
    elements: dict[int, ElementRecord] = {}
    for c in snapshot.collections:
        stack = list(c.elements)
        while stack:
            e = stack.pop()
            elements[e.id] = e
            stack.extend(e.elements)
    job_ids = {j.id for j in snapshot.jobs}
    outside: dict[str, dict[str, Any]] = {}  # referenced, but not part of this export

    def created_by(job: int | None) -> dict[str, Any]:
        if job is None:
            return {}
        if job in job_ids:
            return {"waybill:createdBy": _ref(f"#job-{job}")}
        return {"waybill:creatingJobId": job}

    def dataset_id(item: int) -> str:
        if item in paths:
            return paths[item]
        if item not in datasets and f"#dataset-{item}" not in outside:
            outside[f"#dataset-{item}"] = {
                "@id": f"#dataset-{item}",
                "@type": "CreativeWork",
                "name": f"dataset {item} (not part of this export)",
                "waybill:id": item,
            }
        return f"#dataset-{item}"

    def collection_id(item: int) -> str:
        if item not in collections and f"#collection-{item}" not in outside:
            outside[f"#collection-{item}"] = {
                "@id": f"#collection-{item}",
                "@type": ["Dataset", "Collection"],
                "name": f"collection {item} (not part of this export)",
                "waybill:id": item,
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
                "waybill:id": item,
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
            "waybill:id": d.id,
            "waybill:hid": d.hid,
            "waybill:extension": d.extension,
            "waybill:state": d.state,
            "waybill:visible": d.visible,
            "waybill:deleted": d.deleted,
            **({"waybill:copiedFrom": d.copied_from_id} if d.copied_from_id is not None else {}),
            **created_by(d.creating_job_id),
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
                "waybill:id": c.id,
                "waybill:hid": c.hid,
                "waybill:collectionType": c.collection_type,
                "waybill:visible": c.visible,
                "waybill:deleted": c.deleted,
                **(
                    {"waybill:copiedFrom": c.copied_from_id} if c.copied_from_id is not None else {}
                ),
                **created_by(c.creating_job_id),
                "waybill:elementIdentifiers": [e.identifier for e in c.elements],
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
                    "waybill:id": e.id,
                    "waybill:collectionType": e.child_collection_type,
                    "waybill:elementIdentifiers": [child.identifier for child in e.elements],
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
                **_tool_url(j.tool_id),
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
            "waybill:id": j.id,
            "waybill:state": j.state,
            **(
                {"waybill:implicitCollectionJobs": j.implicit_collection_jobs_id}
                if j.implicit_collection_jobs_id is not None
                else {}
            ),
        }
        if j.state == "ok":
            action["actionStatus"] = COMPLETED
        elif j.state in ("error", "failed"):
            action["actionStatus"] = FAILED
        if agent:
            action["agent"] = _ref("#owner")
        actions.append(action)

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
        "conformsTo": _ref(PROCESS_RUN_CRATE),
        "hasPart": _refs([_ref(f["@id"]) for f in files] + [_ref(snapshot_member)]),
        "mentions": _refs(
            [_ref(a["@id"]) for a in actions] + [_ref(c["@id"]) for c in collection_entities]
        ),
        "waybill:historyId": history.id,
        "waybill:contentVersion": history.content_version,
    }
    return {
        "@context": [RO_CRATE_CONTEXT, {"waybill": WAYBILL}],
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "conformsTo": _ref(RO_CRATE),
                "about": _ref("./"),
            },
            root,
            {
                "@id": PROCESS_RUN_CRATE,
                "@type": "CreativeWork",
                "name": "Process Run Crate",
                "version": "0.5",
            },
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
        ],
    }
