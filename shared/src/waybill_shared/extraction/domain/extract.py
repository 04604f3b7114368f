"""Building a Galaxy workflow document (`.ga`, format-version 0.1) from provenance.

Connections are keyed by (dataset | collection, original id), the root of its
copied_from chain, so copies in other histories connect to what made them (the
bugs of Galaxy #9161, #13823, #12236 come from keying by HID or by the copy). Only
selected jobs and mapped runs become tool steps: a copy never pulls in foreign jobs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from waybill_shared.extraction.domain.graph import ExtractionRequest, ProvenanceGraph

Key = tuple[str, int]  # ("dataset" | "collection", original id)
_NS = uuid.UUID("6d1b7a5e-3c0b-4a51-9b8e-2f6f0c8d1a11")


class ExtractionError(Exception):
    """A request that cannot be extracted; the message names the offending item."""


class InvalidRequest(ExtractionError):
    pass


class NotFound(ExtractionError):
    pass


@dataclass
class _ToolUnit:
    """A tool step to be: one plain job, or one mapped run (all its jobs)."""

    ref: str  # "job 3" / "mapped run 2", for messages and ordering
    order: int
    tool_id: str
    tool_version: str | None
    parameters: dict[str, Any]
    inputs: list[tuple[str, Key | None]]
    outputs: list[tuple[str, Key]]
    step: int = -1
    connections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _root_dataset(graph: ProvenanceGraph, dataset_id: int) -> int:
    seen: set[int] = set()
    current = dataset_id
    while current not in seen:
        seen.add(current)
        d = graph.datasets.get(current)
        if d is None or d.copied_from_id is None or d.copied_from_id not in graph.datasets:
            return current
        current = d.copied_from_id
    return current


def _root_collection(graph: ProvenanceGraph, collection_id: int) -> int:
    seen: set[int] = set()
    current = collection_id
    while current not in seen:
        seen.add(current)
        c = graph.collections.get(current)
        if c is None or c.copied_from_id is None or c.copied_from_id not in graph.collections:
            return current
        current = c.copied_from_id
    return current


def _key(graph: ProvenanceGraph, src: str, ref: int) -> Key | None:
    if src == "hda":
        return ("dataset", _root_dataset(graph, ref))
    if src == "hdca":
        return ("collection", _root_collection(graph, ref))
    element = graph.elements.get(ref)
    if element is None:
        return None
    if element.dataset_id is not None:  # a collection element used as a data parameter
        return ("dataset", _root_dataset(graph, element.dataset_id))
    return None  # a sub-collection: reached through its mapped run, not directly


def _duplicates(values: tuple[int, ...] | tuple[str, ...]) -> list[Any]:
    seen: set[Any] = set()
    return [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]


def validate_request(graph: ProvenanceGraph, request: ExtractionRequest) -> None:
    """Raise InvalidRequest / NotFound naming the offending item; return if fine."""
    if not (
        request.job_ids
        or request.hda_ids
        or request.hdca_ids
        or request.implicit_collection_jobs_ids
    ):
        raise InvalidRequest(
            "select at least one of job_ids, hda_ids, hdca_ids, implicit_collection_jobs_ids"
        )
    for label, ids in (
        ("job_ids", request.job_ids),
        ("hda_ids", request.hda_ids),
        ("hdca_ids", request.hdca_ids),
        ("implicit_collection_jobs_ids", request.implicit_collection_jobs_ids),
    ):
        dup = _duplicates(ids)
        if dup:
            raise InvalidRequest(f"{label} lists {dup[0]} more than once")
    for job_id in request.job_ids:
        job = graph.jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.implicit_collection_jobs_id is not None:
            raise InvalidRequest(
                f"job {job_id} is one job of mapped run {job.implicit_collection_jobs_id}: select the "
                f"run with implicit_collection_jobs_ids=[{job.implicit_collection_jobs_id}]"
            )
    for group in request.implicit_collection_jobs_ids:
        if group not in graph.mapped_runs:
            raise NotFound(f"mapped run {group} not found")
    for dataset_id in request.hda_ids:
        if dataset_id not in graph.datasets:
            raise NotFound(f"dataset {dataset_id} not found")
    for collection_id in request.hdca_ids:
        if collection_id not in graph.collections:
            raise NotFound(f"collection {collection_id} not found")
    for label, names, ids in (
        ("dataset_names", request.dataset_names, request.hda_ids),
        ("dataset_collection_names", request.dataset_collection_names, request.hdca_ids),
    ):
        if len(names) > len(ids):
            raise InvalidRequest(f"{label} has {len(names)} names for {len(ids)} inputs")
        for index, name in enumerate(names):
            if not name.strip():
                raise InvalidRequest(f"{label}[{index}] is blank: an input needs a name")
    all_names = [*request.dataset_names, *request.dataset_collection_names]
    dup_names = _duplicates(tuple(all_names))
    if dup_names:
        raise InvalidRequest(f"input name {dup_names[0]!r} is used twice")
    labels = [o.label for o in request.output_labels]
    for o in request.output_labels:
        if not o.label.strip():
            raise InvalidRequest(f"the output label for {o.kind} {o.id} is blank")
    dup_labels = _duplicates(tuple(labels))
    if dup_labels:
        raise InvalidRequest(f"output label {dup_labels[0]!r} is used twice")
    # Orphan labels are found while building (an output must belong to a step).
    _plan(graph, request)


def _units(graph: ProvenanceGraph, request: ExtractionRequest) -> list[_ToolUnit]:
    units: list[_ToolUnit] = []
    for job_id in request.job_ids:
        job = graph.jobs[job_id]
        units.append(
            _ToolUnit(
                ref=f"job {job.id}",
                order=job.id,
                tool_id=job.tool_id,
                tool_version=job.tool_version,
                parameters=job.parameters,
                inputs=[(i.name, _key(graph, i.src, i.id)) for i in job.inputs],
                outputs=[
                    (o.name, k) for o in job.outputs if (k := _key(graph, o.src, o.id)) is not None
                ],
            )
        )
    for group_id in request.implicit_collection_jobs_ids:
        run = graph.mapped_runs[group_id]
        members = [graph.jobs[j] for j in run.job_ids if j in graph.jobs]
        if not members:
            raise NotFound(f"mapped run {group_id} has no jobs")
        first = min(members, key=lambda j: j.id)
        mapped = {m.name for m in run.map_over}
        inputs: list[tuple[str, Key | None]] = [
            (m.name, ("collection", _root_collection(graph, m.hdca_id))) for m in run.map_over
        ]
        inputs += [(i.name, _key(graph, i.src, i.id)) for i in first.inputs if i.name not in mapped]
        outputs = [
            (c.implicit_output_name or "output", ("collection", _root_collection(graph, c.id)))
            for c in sorted(graph.collections.values(), key=lambda c: c.id)
            if c.implicit_collection_jobs_id == group_id
        ]
        units.append(
            _ToolUnit(
                ref=f"mapped run {group_id}",
                order=first.id,
                tool_id=first.tool_id,
                tool_version=first.tool_version,
                parameters=first.parameters,
                inputs=inputs,
                outputs=outputs,
            )
        )
    return units


@dataclass
class _Plan:
    inputs: list[dict[str, Any]]  # input steps, in step order
    units: list[_ToolUnit]  # tool steps, in step order
    levels: dict[int, int]
    labels: dict[int, list[dict[str, str]]]


def _plan(graph: ProvenanceGraph, request: ExtractionRequest) -> _Plan:
    named_datasets = dict(zip(request.hda_ids, request.dataset_names, strict=False))
    named_collections = dict(zip(request.hdca_ids, request.dataset_collection_names, strict=False))
    # Input steps in history order, whatever the order of the request. An input
    # without a caller's name is named after its dataset or collection (as Galaxy's
    # extraction form fills it in); step labels must be unique, so, as in Galaxy, a
    # default name becomes the label only where no earlier input (and no name the
    # caller gave) has it already. Names the caller gives are unique (checked above).
    datasets = sorted(request.hda_ids, key=lambda i: (graph.datasets[i].hid, i))
    collections = sorted(request.hdca_ids, key=lambda i: (graph.collections[i].hid, i))
    labels_taken = set(named_datasets.values()) | set(named_collections.values())
    inputs: list[dict[str, Any]] = []
    input_of: dict[Key, int] = {}

    def input_step(kind: str, given: str | None, default: str, **fields: Any) -> int:
        label: str | None = given
        if given is None and default not in labels_taken:
            label = default
            labels_taken.add(default)
        inputs.append({"kind": kind, "name": given or default, "label": label, **fields})
        return len(inputs) - 1

    for dataset_id in datasets:
        d = graph.datasets[dataset_id]
        step = input_step(
            "data_input", named_datasets.get(dataset_id), d.name, extension=d.extension
        )
        input_of.setdefault(("dataset", _root_dataset(graph, dataset_id)), step)
    for collection_id in collections:
        c = graph.collections[collection_id]
        step = input_step(
            "data_collection_input",
            named_collections.get(collection_id),
            c.name,
            collection_type=c.collection_type,
        )
        input_of.setdefault(("collection", _root_collection(graph, collection_id)), step)

    units = _units(graph, request)
    producer: dict[Key, tuple[_ToolUnit, str]] = {}
    for unit in sorted(units, key=lambda u: u.order):
        for name, out_key in unit.outputs:
            producer.setdefault(out_key, (unit, name))
    depends: dict[int, set[int]] = {id(u): set() for u in units}
    by_id = {id(u): u for u in units}
    for unit in units:
        for _, dep_key in unit.inputs:
            if dep_key is not None and dep_key in producer and producer[dep_key][0] is not unit:
                depends[id(unit)].add(id(producer[dep_key][0]))
    try:
        sorter = TopologicalSorter(depends)
        sorter.prepare()
    except CycleError as exc:
        raise InvalidRequest(
            f"the selected jobs depend on each other in a cycle: {exc.args[1]}"
        ) from exc
    ordered: list[_ToolUnit] = []
    while sorter.is_active():
        ready = sorted((by_id[n] for n in sorter.get_ready()), key=lambda u: u.order)
        ordered.extend(ready)
        sorter.done(*(id(u) for u in ready))
    levels: dict[int, int] = dict.fromkeys(range(len(inputs)), 0)
    for index, unit in enumerate(ordered):
        unit.step = len(inputs) + index
    for unit in ordered:
        level = 1
        for name, in_key in unit.inputs:
            if in_key is None:
                continue
            target: dict[str, Any]
            if in_key in producer and producer[in_key][0] is not unit:
                source, output = producer[in_key]
                target = {"id": source.step, "output_name": output}
            elif in_key in input_of:
                source_step = input_of[in_key]
                target = {"id": source_step, "output_name": "output"}
            else:
                continue
            unit.connections.setdefault(name, []).append(target)
            level = max(level, levels[int(target["id"])] + 1)
        levels[unit.step] = level

    labels: dict[int, list[dict[str, str]]] = defaultdict(list)
    for o in request.output_labels:
        label_key: Key = (
            ("dataset", _root_dataset(graph, o.id))
            if o.kind == "hda"
            else ("collection", _root_collection(graph, o.id))
        )
        if label_key in producer:
            producer_unit, output = producer[label_key]
            labels[producer_unit.step].append({"output_name": output, "label": o.label})
        elif label_key in input_of:
            labels[input_of[label_key]].append({"output_name": "output", "label": o.label})
        else:
            raise InvalidRequest(
                f"output label {o.label!r}: {o.kind} {o.id} is not an input or an output of a selected step"
            )
    return _Plan(inputs, ordered, levels, labels)


def _null_data_params(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("src") in ("hda", "hdca", "dce", "ldda") and "id" in value:
            return None
        if "values" in value and isinstance(value["values"], list):  # batch/multiple values
            return None
        return {k: _null_data_params(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_data_params(v) for v in value]
    return value


def build_workflow(graph: ProvenanceGraph, request: ExtractionRequest) -> dict[str, Any]:
    validate_request(graph, request)
    plan = _plan(graph, request)
    # A digest of the selection: step uuids are stable for the same request.
    seed = hashlib.sha256(
        json.dumps(
            [
                request.workflow_name,
                sorted(request.job_ids),
                sorted(request.hda_ids),
                sorted(request.hdca_ids),
                sorted(request.implicit_collection_jobs_ids),
            ]
        ).encode()
    ).hexdigest()

    row_of: dict[int, int] = defaultdict(int)

    def position(step: int) -> dict[str, int]:
        level = plan.levels.get(step, 0)
        row = row_of[level]
        row_of[level] += 1
        return {"left": 10 + 220 * level, "top": 10 + 130 * row}

    def step_uuid(step: int) -> str:
        return str(uuid.uuid5(_NS, f"{seed}:{step}"))

    steps: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(plan.inputs):
        collection = item["kind"] == "data_collection_input"
        state: dict[str, Any] = {"name": item["name"]}
        if collection:
            state["collection_type"] = item["collection_type"]
        steps[str(index)] = {
            "id": index,
            "type": item["kind"],
            "tool_id": None,
            "tool_version": None,
            "name": "Input dataset collection" if collection else "Input dataset",
            "label": item["label"],
            "annotation": "",
            "content_id": None,
            "errors": None,
            "tool_state": json.dumps(state),
            "inputs": [{"name": item["name"], "description": ""}],
            "outputs": [],
            "input_connections": {},
            "position": position(index),
            "uuid": step_uuid(index),
            "workflow_outputs": [
                {**w, "uuid": str(uuid.uuid5(_NS, f"{seed}:{index}:{w['label']}"))}
                for w in plan.labels.get(index, [])
            ],
        }
    for unit in plan.units:
        state = {k: _null_data_params(v) for k, v in unit.parameters.items()}
        state.setdefault("__page__", None)
        state.setdefault("__rerun_remap_job_id__", None)
        connected = set(unit.connections)
        runtime_inputs = [
            {"name": name, "description": f"runtime parameter for tool {unit.tool_id}"}
            for name, _ in unit.inputs
            if name not in connected
        ]
        steps[str(unit.step)] = {
            "id": unit.step,
            "type": "tool",
            "tool_id": unit.tool_id,
            "tool_version": unit.tool_version,
            "content_id": unit.tool_id,
            "name": unit.tool_id,
            "label": None,
            "annotation": "",
            "errors": None,
            "tool_state": json.dumps(state),
            "input_connections": {
                name: targets[0] if len(targets) == 1 else targets
                for name, targets in unit.connections.items()
            },
            "inputs": runtime_inputs,
            "outputs": [{"name": name, "type": "input"} for name, _ in unit.outputs],
            "post_job_actions": {},
            "position": position(unit.step),
            "uuid": step_uuid(unit.step),
            "workflow_outputs": [
                {**w, "uuid": str(uuid.uuid5(_NS, f"{seed}:{unit.step}:{w['label']}"))}
                for w in plan.labels.get(unit.step, [])
            ],
        }
    return {
        "a_galaxy_workflow": "true",
        "format-version": "0.1",
        "name": request.workflow_name,
        "annotation": "",
        "tags": [],
        "uuid": str(uuid.uuid5(_NS, seed)),
        "version": 1,
        "steps": steps,
    }
