"""The history snapshot: what an archive holds, by the source database's ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size: int
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    hid: int
    name: str
    extension: str
    state: str
    visible: bool
    deleted: bool
    copied_from_id: int | None
    creating_job_id: int | None
    file: FileRecord


@dataclass(frozen=True)
class ElementRecord:
    id: int
    identifier: str
    dataset_id: int | None
    child_collection_type: str | None
    elements: tuple[ElementRecord, ...] = ()


@dataclass(frozen=True)
class CollectionRecord:
    id: int
    hid: int
    name: str
    collection_type: str
    visible: bool
    deleted: bool
    copied_from_id: int | None
    creating_job_id: int | None
    implicit_collection_jobs_id: int | None
    implicit_output_name: str | None
    implicit_input_collections: dict[str, int]
    elements: tuple[ElementRecord, ...]


@dataclass(frozen=True)
class JobIO:
    name: str
    src: str
    id: int


@dataclass(frozen=True)
class JobRecord:
    id: int
    tool_id: str
    tool_version: str | None
    parameters: dict[str, Any]
    state: str
    implicit_collection_jobs_id: int | None
    inputs: tuple[JobIO, ...]
    outputs: tuple[JobIO, ...]
    created_at: datetime


@dataclass(frozen=True)
class ImplicitCollectionJobsRecord:
    id: int
    tool_id: str
    map_over: list[dict[str, Any]]
    job_ids: tuple[int, ...]


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow extracted from this history, with what its extraction selected: the
    Workflow Run Crate describes it as run on those inputs, making those outputs."""

    id: int
    name: str
    created_at: datetime
    hda_ids: tuple[int, ...] = ()  # the datasets it takes as inputs
    hdca_ids: tuple[int, ...] = ()  # the collections it takes as inputs
    job_ids: tuple[int, ...] = ()  # its tool steps: plain jobs ...
    implicit_collection_jobs_ids: tuple[int, ...] = ()  # ... and mapped runs


@dataclass(frozen=True)
class HistoryRecord:
    id: int
    name: str
    content_version: int
    created_at: datetime
    update_time: datetime
    owner_name: str


@dataclass(frozen=True)
class HistorySnapshot:
    history: HistoryRecord
    datasets: tuple[DatasetRecord, ...]
    collections: tuple[CollectionRecord, ...]
    jobs: tuple[JobRecord, ...]
    implicit_collection_jobs: tuple[ImplicitCollectionJobsRecord, ...]
    exported_at: datetime
    include_files: bool
    workflows: tuple[WorkflowRecord, ...] = ()
