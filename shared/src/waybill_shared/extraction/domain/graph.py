"""The provenance graph extraction works on: plain frozen records, loaded by
waybill_shared.extraction.repository or built by hand in tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Src = Literal["hda", "hdca", "dce"]


@dataclass(frozen=True)
class Dataset:
    id: int
    history_id: int
    hid: int
    name: str
    extension: str = "data"
    copied_from_id: int | None = None
    creating_job_id: int | None = None


@dataclass(frozen=True)
class Element:
    id: int
    collection_id: int
    identifier: str
    dataset_id: int | None = None
    parent_id: int | None = None


@dataclass(frozen=True)
class Collection:
    id: int
    history_id: int
    hid: int
    name: str
    collection_type: str
    copied_from_id: int | None = None
    creating_job_id: int | None = None
    implicit_collection_jobs_id: int | None = None
    implicit_output_name: str | None = None


@dataclass(frozen=True)
class JobIO:
    name: str
    src: str  # hda | hdca | dce
    id: int


@dataclass(frozen=True)
class Job:
    id: int
    history_id: int
    tool_id: str
    tool_version: str | None
    parameters: dict[str, Any]
    inputs: tuple[JobIO, ...] = ()
    outputs: tuple[JobIO, ...] = ()
    implicit_collection_jobs_id: int | None = None


@dataclass(frozen=True)
class MapOver:
    name: str
    hdca_id: int
    subcollection_type: str | None = None


@dataclass(frozen=True)
class MappedRun:
    """An implicit-collection-jobs group: one job per element mapped over."""

    id: int
    tool_id: str
    map_over: tuple[MapOver, ...]
    job_ids: tuple[int, ...]


@dataclass
class ProvenanceGraph:
    """Everything reachable from the selection: the selected items, what their jobs
    read and wrote, every copied_from chain to its root, collection elements."""

    datasets: dict[int, Dataset] = field(default_factory=dict)
    collections: dict[int, Collection] = field(default_factory=dict)
    elements: dict[int, Element] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    mapped_runs: dict[int, MappedRun] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputLabel:
    id: int
    kind: Literal["hda", "hdca"]
    label: str


@dataclass(frozen=True)
class ExtractionRequest:
    workflow_name: str
    job_ids: tuple[int, ...] = ()
    hda_ids: tuple[int, ...] = ()
    hdca_ids: tuple[int, ...] = ()
    implicit_collection_jobs_ids: tuple[int, ...] = ()
    dataset_names: tuple[str, ...] = ()
    dataset_collection_names: tuple[str, ...] = ()
    output_labels: tuple[OutputLabel, ...] = ()
    from_history_id: int | None = None
