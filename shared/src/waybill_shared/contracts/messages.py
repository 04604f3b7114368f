"""Message models. Each carries ids and storage keys, never ORM objects or bytes.

Versioning: `TYPE` names the message and `VERSION` its schema; a breaking change adds
a new model with VERSION + 1, consumers accept both until publishers have moved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from waybill_shared.contracts.types import DbId
from waybill_shared.provenance.schemas import JobRecordRequest

ExportFormat = Literal[
    "csv", "tsv", "json", "excel", "parquet", "hdf5", "arrow", "orc", "avro", "netcdf", "zip"
]
TaskKind = Literal["data_export", "history_export", "history_import", "workflow_extraction"]
TaskStatus = Literal["pending", "processing", "completed", "failed", "cancelled", "expired"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    ROUTING_KEY: ClassVar[str]

    @classmethod
    def message_type(cls) -> str:
        return f"{cls.TYPE}.v{cls.VERSION}"


class DataExportRequested(Message):
    """Command: export catalog files and history datasets as one package.

    Published by the gateway, or by another system with a fresh `task_id` of its own
    choosing (the task is registered on first sight; the same id twice is one task).
    Another system publishes as its service account's AMQP user, with the AMQP
    `user_id` property set to that user (the broker refuses any other value). Before
    any work, the worker checks that the service account may act for `owner_id`, and
    that `owner_id` may read every file.
    """

    TYPE = "waybill.data_export.requested"
    ROUTING_KEY = "export.requested"
    KIND: ClassVar[TaskKind] = "data_export"

    task_id: UUID = Field(description="Idempotency key of the task; a UUID the publisher picks.")
    owner_id: DbId = Field(
        description="The requesting user: the publisher must be allowed to act for them, "
        "and authorization is checked for them."
    )
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    file_ids: list[DbId] = Field(default_factory=list)
    dataset_ids: list[DbId] = Field(default_factory=list)
    export_format: ExportFormat
    export_options: dict[str, Any] = Field(default_factory=dict)
    include_metadata: bool = True
    include_lineage: bool = False
    compress: bool = True
    ttl_hours: int = Field(default=48, ge=1, le=168)
    job_key: str | None = Field(default=None, max_length=200)


# Galaxy's ModelStoreFormat. tgz is tar.gz; bag.* are BagIt bags; bco.json is a
# BioCompute Object, a description that cannot be re-imported.
HistoryStoreFormat = Literal[
    "rocrate.zip", "tar.gz", "tgz", "tar", "bag.zip", "bag.tar", "bag.tgz", "bco.json"
]


class HistoryExportRequested(Message):
    """Command: package a whole history (datasets, collections, jobs) as an archive,
    for short-term download or written to a long-term S3 location."""

    TYPE = "waybill.history_export.requested"
    ROUTING_KEY = "history_export.requested"
    KIND: ClassVar[TaskKind] = "history_export"

    task_id: UUID
    owner_id: DbId
    history_id: DbId
    model_store_format: HistoryStoreFormat = "rocrate.zip"
    include_files: bool = True
    include_hidden: bool = False
    include_deleted: bool = False
    destination: Literal["short_term", "remote"] = "short_term"
    target_uri: str | None = Field(
        default=None, description="s3://bucket/key for remote exports (an allowed prefix)"
    )


class HistoryImportRequested(Message):
    """Command: make a new history from an exported archive (by its S3 URI)."""

    TYPE = "waybill.history_import.requested"
    ROUTING_KEY = "history_import.requested"
    KIND: ClassVar[TaskKind] = "history_import"

    task_id: UUID
    owner_id: DbId
    store_content_uri: str = Field(description="s3://bucket/key of a history export archive")


class OutputLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: DbId
    kind: Literal["hda", "hdca"]
    label: str = Field(max_length=255)


class ExtractionRequested(Message):
    """Command: extract a workflow from the provenance of the given items."""

    TYPE = "waybill.workflow_extraction.requested"
    ROUTING_KEY = "extraction.requested"
    KIND: ClassVar[TaskKind] = "workflow_extraction"

    task_id: UUID
    owner_id: DbId
    workflow_name: str = Field(min_length=1, max_length=500)
    from_history_id: DbId | None = None
    job_ids: list[DbId] = Field(default_factory=list)
    hda_ids: list[DbId] = Field(default_factory=list)
    hdca_ids: list[DbId] = Field(default_factory=list)
    implicit_collection_jobs_ids: list[DbId] = Field(default_factory=list)
    dataset_names: list[str] = Field(default_factory=list)
    dataset_collection_names: list[str] = Field(default_factory=list)
    output_labels: list[OutputLabel] = Field(default_factory=list)


class ProvenanceRecorded(Message):
    """Event from another system: a tool run happened. Recorded exactly like
    POST /api/jobs, with the same validation and ownership checks for `owner_id`;
    `event_id` makes a redelivery a no-op. A record that fails validation is
    dead-lettered with the reason."""

    TYPE = "waybill.provenance.recorded"
    ROUTING_KEY = "provenance.recorded"

    event_id: UUID
    owner_id: DbId
    job: JobRecordRequest


class Artifact(BaseModel):
    """A stored object: its key, size and checksum, and the name to download it as."""

    model_config = ConfigDict(extra="forbid")
    key: str
    size: int
    sha256: str
    content_type: str = "application/octet-stream"
    filename: str


class ItemResult(BaseModel):
    """The outcome of one exported file. `artifact`: the converted file stored on its
    own (an export with `compress: false` and several files); absent otherwise."""

    model_config = ConfigDict(extra="forbid")
    file_id: int | None = None
    dataset_id: int | None = None
    filename: str
    status: Literal["pending", "completed", "failed"]
    output_name: str | None = None
    size: int | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    rows_read: int | None = None
    rows_written: int | None = None
    artifact: Artifact | None = None


class TaskEvent(Message):
    """Event: something happened to a task. The tracker applies events in order per
    task; (task_id, attempt, seq) identifies an event, so duplicates are no-ops."""

    TYPE = "waybill.task.event"
    # The principal whose task it is comes first (see Topology.event_key).
    ROUTING_KEY = "task.{principal}.{kind}.{event}"

    task_id: UUID
    kind: TaskKind
    attempt: int = Field(ge=1)
    seq: int = Field(ge=0)
    event: Literal["processing", "progress", "item", "completed", "failed", "cancelled"]
    progress: float = Field(default=0.0, ge=0, le=100)
    processed_items: int = 0
    failed_items: int = 0
    item_index: int | None = None
    item: ItemResult | None = None
    artifact: Artifact | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


COMMANDS: tuple[type[Message], ...] = (
    DataExportRequested,
    HistoryExportRequested,
    HistoryImportRequested,
    ExtractionRequested,
    ProvenanceRecorded,
)
EVENTS: tuple[type[Message], ...] = (TaskEvent,)


def message_model_for(message_type: str | None) -> type[Message] | None:
    for model in (*COMMANDS, *EVENTS):
        if model.message_type() == message_type:
            return model
    return None
