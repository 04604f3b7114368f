"""The archive layout (member names), snapshot <-> JSON, and the structural checks a
snapshot passes before it is written and after it is read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from waybill_export_worker.history_archive.model import (
    DatasetRecord,
    ElementRecord,
    HistorySnapshot,
    WorkflowRecord,
)

FORMAT_VERSION = 1

# Members, both formats. Dataset files are the only other members: datasets/<name>.
SNAPSHOT_MEMBER = "waybill-history.json"  # rocrate.zip: the full snapshot
CRATE_MEMBER = "ro-crate-metadata.json"  # rocrate.zip: the RO-Crate metadata
TAR_MEMBERS = (
    "history.json",
    "datasets.json",
    "collections.json",
    "jobs.json",
    "implicit_collection_jobs.json",
)
TAR_WORKFLOWS_MEMBER = "workflows.json"  # tar layout; archives before workflows lack it
DATASETS_DIR = "datasets/"
DATASET_MEMBER = re.compile(r"datasets/[0-9]+_[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
WORKFLOWS_DIR = "workflows/"
WORKFLOW_MEMBER = re.compile(r"workflows/[0-9]+_[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.ga")

JOB_INPUT_SOURCES = frozenset({"hda", "hdca", "dce"})
JOB_OUTPUT_SOURCES = frozenset({"hda", "hdca"})
MAX_ELEMENT_DEPTH = 32
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

SNAPSHOT = TypeAdapter(HistorySnapshot)


class InvalidSnapshot(ValueError):
    """A snapshot that cannot be archived or re-imported as it is; the message says why."""


def to_json(snapshot: HistorySnapshot) -> dict[str, Any]:
    data: dict[str, Any] = SNAPSHOT.dump_python(snapshot, mode="json")
    return data


def from_json(data: dict[str, Any]) -> HistorySnapshot:
    return SNAPSHOT.validate_python(data)


def member_name(record: DatasetRecord) -> str:
    """`datasets/<id>_<name>[.<extension>]`: unique by the dataset id, and safe whatever
    the user named it (only ASCII letters, digits, '.', '_' and '-'; no separators, no
    '..', no control characters; at most 200 characters after the id)."""
    extension = _UNSAFE.sub("_", record.extension).strip("._-")[:20]
    name = _UNSAFE.sub("_", record.name).strip("._-")
    if extension and name.endswith(f".{extension}"):
        name = name[: -len(extension) - 1].rstrip("._-")
    name = name[: 200 - len(extension) - 1].rstrip("._-") or "dataset"
    return (
        f"{DATASETS_DIR}{record.id}_{name}.{extension}"
        if extension
        else f"{DATASETS_DIR}{record.id}_{name}"
    )


def workflow_member(record: WorkflowRecord) -> str:
    """`workflows/<id>_<name>.ga`: the Galaxy workflow document, named safely as above."""
    name = _UNSAFE.sub("_", record.name).strip("._-")[:190].rstrip("._-") or "workflow"
    return f"{WORKFLOWS_DIR}{record.id}_{name}.ga"


def iso8601(moment: datetime) -> str:
    """Seconds and an explicit offset, the form the Process Run Crate profile checks
    (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def iter_elements(elements: tuple[ElementRecord, ...]) -> list[tuple[ElementRecord, int]]:
    """Every element of a tree with its depth (1 = the collection's own elements)."""
    out: list[tuple[ElementRecord, int]] = []
    stack = [(e, 1) for e in reversed(elements)]
    while stack:
        element, depth = stack.pop()
        out.append((element, depth))
        stack.extend((child, depth + 1) for child in reversed(element.elements))
    return out


def check_snapshot(snapshot: HistorySnapshot) -> None:
    """What the archive needs to rebuild the history without guessing: unique ids per
    kind, well-formed files and element trees, known job input and output sources.
    References may point outside the snapshot (a dataset copied from another history,
    a job input that was not exported): the importer decides what to do with those."""

    def unique(kind: str, ids: list[int]) -> None:
        seen: set[int] = set()
        for i in ids:
            if i in seen:
                raise InvalidSnapshot(f"{kind} id {i} appears twice")
            seen.add(i)

    unique("dataset", [d.id for d in snapshot.datasets])
    unique("collection", [c.id for c in snapshot.collections])
    unique("job", [j.id for j in snapshot.jobs])
    unique("implicit collection jobs", [g.id for g in snapshot.implicit_collection_jobs])
    unique("workflow", [w.id for w in snapshot.workflows])
    for d in snapshot.datasets:
        if not _SHA256.fullmatch(d.file.sha256):
            raise InvalidSnapshot(f"dataset {d.id}: sha256 is not 64 lowercase hex digits")
        if d.file.size < 0:
            raise InvalidSnapshot(f"dataset {d.id}: negative size")
    element_ids: list[int] = []
    for c in snapshot.collections:
        for e, depth in iter_elements(c.elements):
            element_ids.append(e.id)
            if depth > MAX_ELEMENT_DEPTH:
                raise InvalidSnapshot(f"collection {c.id} nests deeper than {MAX_ELEMENT_DEPTH}")
            leaf = e.dataset_id is not None
            if leaf == (e.child_collection_type is not None) or (leaf and e.elements):
                raise InvalidSnapshot(
                    f"collection {c.id}, element {e.id}: an element holds either a dataset "
                    "or (with child_collection_type) elements"
                )
    unique("collection element", element_ids)
    for j in snapshot.jobs:
        for io in j.inputs:
            if io.src not in JOB_INPUT_SOURCES:
                raise InvalidSnapshot(f"job {j.id}: input {io.name!r} has src {io.src!r}")
        for io in j.outputs:
            if io.src not in JOB_OUTPUT_SOURCES:
                raise InvalidSnapshot(f"job {j.id}: output {io.name!r} has src {io.src!r}")
