"""The snapshot document of an archive, from its JSON members."""

from __future__ import annotations

import json
from typing import Any

from waybill_export_worker.history_archive.codec import (
    FORMAT_VERSION,
    TAR_MEMBERS,
    TAR_WORKFLOWS_MEMBER,
)
from waybill_export_worker.history_archive.safety import UnsafeArchive


def parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UnsafeArchive(f"{name} is not valid JSON: {exc}") from exc


def files_map(raw: Any) -> dict[int, str]:
    if not isinstance(raw, dict):
        raise UnsafeArchive("invalid history snapshot: 'files' is not an object")
    files: dict[int, str] = {}
    for key, member in raw.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(member, str)):
            raise UnsafeArchive(f"invalid history snapshot: files entry {key!r}: {member!r}")
        files[int(key)] = member
    return files


def tar_layout_document(json_members: dict[str, bytes]) -> tuple[Any, dict[int, str]]:
    """The snapshot from the tar layout's JSON members (a tar or a bag's payload)."""
    parts: dict[str, Any] = {}
    for name in TAR_MEMBERS:
        if name not in json_members:
            raise UnsafeArchive(f"{name} is missing: not a Waybill history archive")
        parts[name] = parse_json(name, json_members[name])
    workflows: Any = []
    if TAR_WORKFLOWS_MEMBER in json_members:
        workflows = parse_json(TAR_WORKFLOWS_MEMBER, json_members[TAR_WORKFLOWS_MEMBER])
    head, datasets = parts["history.json"], parts["datasets.json"]
    if not isinstance(head, dict):
        raise UnsafeArchive("history.json is not a JSON object")
    if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
        raise UnsafeArchive("datasets.json is not a list of objects")
    files: dict[int, str] = {}
    for d in datasets:
        member = d.pop("path", None)
        if member is not None:
            if not isinstance(member, str) or not isinstance(d.get("id"), int):
                raise UnsafeArchive(f"datasets.json: invalid path {member!r}")
            if d["id"] in files:
                raise UnsafeArchive(f"datasets.json: dataset {d['id']} appears twice")
            files[d["id"]] = member
    document = {
        "format_version": head.get("format_version", FORMAT_VERSION),
        "history": head.get("history"),
        "exported_at": head.get("exported_at"),
        "include_files": head.get("include_files"),
        "datasets": datasets,
        "collections": parts["collections.json"],
        "jobs": parts["jobs.json"],
        "implicit_collection_jobs": parts["implicit_collection_jobs.json"],
        "workflows": workflows,
    }
    return document, files
