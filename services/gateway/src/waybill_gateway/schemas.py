"""HTTP request and response bodies (docs/API.md is the contract; extra fields are fine)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from waybill_shared.contracts.messages import ExportFormat, HistoryStoreFormat, TaskStatus
from waybill_shared.contracts.types import DbId
from waybill_shared.principals import PRINCIPAL_NAME, ActsFor
from waybill_shared.webhooks.policy import parse_url
from waybill_shared.webhooks.secrets import check_secret

Progress = Annotated[
    int,
    Field(ge=0, le=100, description="whole percent, rounded down: 100 only when completed"),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Schema-only constraints: what the service's own checks refuse (with messages naming
# the item), said in the OpenAPI document so that clients and fuzzers know it.


def unique_list(description: str | None = None) -> Any:
    """A list (of ids, of names) that holds each value at most once."""
    return Field(
        default_factory=list, description=description, json_schema_extra={"uniqueItems": True}
    )


def at_least_one(*lists: str) -> dict[str, Any]:
    """At least one of these lists is not empty."""
    return {
        "anyOf": [{"required": [name], "properties": {name: {"minItems": 1}}} for name in lists]
    }


# A name that is not blank (an input's name, an output's label).
NotBlank = Annotated[str, Field(json_schema_extra={"pattern": r"\S"})]


class UserCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ada"}]})

    name: str = Field(min_length=1, max_length=200)
    is_admin: bool = False


class UserCreated(BaseModel):
    id: int
    name: str
    is_admin: bool
    api_key: str


class UserOut(BaseModel):
    id: int
    name: str
    is_admin: bool


class ApiKeyCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "laptop", "expires_at": "2027-06-30T00:00:00Z"}]}
    )
    name: str = Field(min_length=1, max_length=200, description="unique among the user's keys")
    expires_at: AwareDatetime | None = Field(
        default=None, description="refused from this moment (with a time zone); none: never"
    )


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(
        description="recorded at most once a minute (`api_key_last_used_seconds`)"
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, stored only as a digest")


class QuotaUse(BaseModel):
    used: int
    limit: int | None = Field(description="null: no quota")


class UsageOut(BaseModel):
    stored_bytes: QuotaUse = Field(description="live uploads plus completed export artifacts")
    running_exports: QuotaUse = Field(description="batch exports pending or running")
    files_per_export: int | None = Field(description="the most files one export may name")


class QuotasUpdate(Strict):
    """A user's own quotas (administrators); null: the deployment's default, 0: none."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"stored_bytes": 10737418240, "running_exports": 20}]}
    )
    stored_bytes: int | None = Field(default=None, ge=0, le=2**62)
    running_exports: int | None = Field(default=None, ge=0, le=2**31 - 1)
    files_per_export: int | None = Field(default=None, ge=0, le=2**31 - 1)


class ServiceAccountCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "lims", "amqp_user": "lims", "acts_for": "users", "user_ids": [7, 9]}
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200, description="also the name of its own user")
    amqp_user: str = Field(
        pattern=PRINCIPAL_NAME.pattern,
        description="the RabbitMQ user it publishes as (letters, digits, '_' and '-'; it is "
        "one word of its events' routing keys)",
    )
    acts_for: ActsFor = Field(
        description="whose commands it may publish: 'self' (its own user only), 'users' "
        "(those of user_ids, and itself) or 'any' (every user)"
    )
    user_ids: list[DbId] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _user_ids_go_with_users(self) -> ServiceAccountCreate:
        if self.acts_for == "users" and not self.user_ids:
            raise ValueError("acts_for 'users' needs user_ids: the users it may act for")
        if self.acts_for != "users" and self.user_ids:
            raise ValueError(
                f"user_ids are given only with acts_for 'users', not {self.acts_for!r}"
            )
        if len(set(self.user_ids)) != len(self.user_ids):
            raise ValueError("user_ids contains duplicates")
        return self


class AmqpPermissions(BaseModel):
    """What its RabbitMQ user must be granted on the vhost (rabbitmqctl set_permissions
    and set_topic_permissions; see docs/PRINCIPALS.md)."""

    configure: str
    write: str
    read: str
    topic_exchange: str
    topic_write: str
    topic_read: str


class ServiceAccountOut(BaseModel):
    id: int
    name: str
    amqp_user: str
    acts_for: ActsFor
    user_ids: list[int]
    user_id: int = Field(description="its own user (the owner of what it makes for itself)")
    created_at: datetime
    amqp_permissions: AmqpPermissions


class ServiceAccountCreated(ServiceAccountOut):
    api_key: str = Field(description="its own user's API key, shown once (for uploads over HTTP)")


class ProjectCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "RNA-seq 2026", "description": "liver samples"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ProjectOut(BaseModel):
    id: int
    name: str
    description: str | None
    created_at: datetime


class FileOut(BaseModel):
    id: int
    filename: str
    size: int
    sha256: str
    format: str
    project_id: int | None
    metadata: dict[str, Any]
    uploaded_at: datetime
    # "missing": the storage reconcile found the bytes gone; the content answers 410.
    status: Literal["available", "missing"] = "available"


class DataExportCreate(Strict):
    """`export_options` are the chosen format's (see the format's options schema; the
    document ties each export_format to them: waybill_gateway.openapi)."""

    model_config = ConfigDict(
        json_schema_extra={
            **at_least_one("file_ids", "dataset_ids"),
            "examples": [
                {
                    "name": "RNA-seq counts as Parquet",
                    "file_ids": [1, 2],
                    "export_format": "parquet",
                    "export_options": {"compression": "zstd"},
                    "compress": False,
                    "job_key": "weekly-2026-49",
                },
                {"name": "raw files", "file_ids": [1], "dataset_ids": [7], "export_format": "zip"},
            ],
        }
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    file_ids: list[DbId] = unique_list("catalog files")
    dataset_ids: list[DbId] = unique_list("history datasets")
    export_format: ExportFormat
    export_options: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Options of the format (docs/EXPORT-OPTIONS.md), checked when the job is "
            "created: unknown options are a 422. Every format but zip also takes "
            "`columns` (names, in output order) and `filter`: a condition "
            '{"column", "op", "value"} (ops = != < <= > >= in is_null not_null '
            'contains), {"all": [...]}, {"any": [...]} (nestable), or a list (all).'
        ),
        examples=[
            {
                "compression": "zstd",
                "columns": ["gene_id", "padj"],
                "filter": [{"column": "padj", "op": "<", "value": 0.05}],
            }
        ],
    )
    include_metadata: bool = True
    include_lineage: bool = False
    compress: bool = True
    ttl_hours: int = Field(default=48, ge=1, le=168)
    job_key: str | None = Field(default=None, min_length=1, max_length=200)


class ExportFileOut(BaseModel):
    file_id: int | None
    dataset_id: int | None = None
    filename: str
    status: str
    output_name: str | None = None
    size: int | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    rows_read: int | None = None
    rows_written: int | None = None
    download_url: str | None = Field(
        default=None,
        description="this file alone, signed now (several files with compress: false)",
    )


class DataExportJob(BaseModel):
    id: int
    task_id: str
    job_key: str | None
    name: str
    description: str | None
    status: TaskStatus
    progress: Progress
    total_files: int
    processed_files: int
    failed_files: int
    files: list[ExportFileOut]
    output_size: int | None
    download_url: str | None
    expires_at: datetime | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    export_format: str
    export_options: dict[str, Any]
    include_metadata: bool
    include_lineage: bool
    compress: bool
    ttl_hours: int


class CancelResult(BaseModel):
    message: str
    job_id: int


class ExportStatistics(BaseModel):
    total_jobs: int
    by_status: dict[str, int]
    by_format: dict[str, int]
    total_size_bytes: int
    total_files_exported: int


class CleanupResult(BaseModel):
    message: str
    count: int


class TaskEventOut(BaseModel):
    attempt: int
    seq: int
    event_type: str
    status: TaskStatus
    progress: Progress
    payload: dict[str, Any]
    occurred_at: datetime


# --- histories and provenance ------------------------------------------------------------


class HistoryCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "liver RNA-seq"}]})

    name: str = Field(min_length=1, max_length=500)


class HistoryOut(BaseModel):
    id: int
    name: str
    update_time: datetime
    create_time: datetime
    content_version: int
    user_id: int


class ContentItem(BaseModel):
    id: int
    hid: int
    history_id: int
    history_content_type: Literal["dataset", "dataset_collection"]
    name: str
    extension: str | None = None
    collection_type: str | None = None
    state: str
    visible: bool
    deleted: bool


class DatasetOut(ContentItem):
    file_id: int
    copied_from_id: int | None
    creating_job_id: int | None


class ElementOut(BaseModel):
    id: int
    element_identifier: str
    dataset_id: int | None
    collection_type: str | None
    elements: list[ElementOut] | None


class CollectionOut(ContentItem):
    copied_from_id: int | None
    creating_job_id: int | None
    implicit_collection_jobs_id: int | None
    implicit_output_name: str | None
    implicit_input_collections: dict[str, int]
    elements: list[ElementOut]


class JobIOOut(BaseModel):
    name: str
    src: str
    id: int


class JobOut(BaseModel):
    id: int
    history_id: int
    tool_id: str
    tool_version: str | None
    parameters: dict[str, Any]
    state: str
    create_time: datetime
    implicit_collection_jobs_id: int | None
    inputs: list[JobIOOut]
    outputs: list[JobIOOut]


class RecordedJobOut(BaseModel):
    jobs: list[JobOut]
    outputs: list[ContentItem]
    output_collections: list[ContentItem]
    implicit_collection_jobs_id: int | None


# --- history exports, imports, tasks -------------------------------------------------------


class HistoryExportOptions(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model_store_format": "rocrate.zip", "include_files": True}]
        }
    )

    model_store_format: HistoryStoreFormat = Field(
        default="rocrate.zip",
        description="Galaxy's ModelStoreFormat: rocrate.zip (an RO-Crate), tar.gz = tgz and tar "
        "(the tar layout), bag.zip, bag.tar, bag.tgz (BagIt bags of it), bco.json (a "
        "BioCompute Object: a description, not re-importable)",
    )
    include_files: bool = True
    include_hidden: bool = False
    include_deleted: bool = False


class WriteStoreRequest(HistoryExportOptions):
    """`target_uri`'s pattern in the document names the allowed prefixes of the
    deployment that serves it (waybill_gateway.openapi)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "target_uri": "s3://waybill/remote/liver.rocrate.zip",
                    "model_store_format": "rocrate.zip",
                }
            ]
        }
    )

    target_uri: str = Field(
        min_length=6, max_length=1024, description="s3://bucket/key under an allowed prefix"
    )


class StoreDownloadOut(BaseModel):
    storage_request_id: str
    task_id: str
    reused: bool = False


class TaskRef(BaseModel):
    task_id: str


class ExportRecord(BaseModel):
    id: int
    ready: bool
    preparing: bool
    up_to_date: bool
    has_failed: bool
    expired: bool
    status: str
    task_uuid: str
    create_time: datetime
    expires_at: datetime | None
    destination: str
    export_metadata: dict[str, Any]


def _what_an_import_takes(schema: dict[str, Any]) -> None:
    """Galaxy's fields are all accepted, but an import needs `store_content_uri`, and
    refuses `store_dict` and `bco.json` (a description, not an archive) with a 422:
    the document says so."""
    uri = schema["properties"]["store_content_uri"]
    text = next(branch for branch in uri.pop("anyOf") if branch.get("type") == "string")
    uri.update(text)
    uri.pop("default", None)
    formats = schema["properties"]["model_store_format"]["anyOf"][0]
    formats["enum"] = [f for f in formats["enum"] if f != "bco.json"]
    schema["required"] = ["store_content_uri"]
    schema["properties"]["store_dict"] = {
        "type": "null",
        "description": schema["properties"]["store_dict"].get("description", ""),
    }
    schema["examples"] = [{"store_content_uri": "s3://waybill/remote/liver.tar.gz"}]


class FromStoreRequest(Strict):
    """Galaxy's `CreateHistoryFromStore`."""

    model_config = ConfigDict(json_schema_extra=_what_an_import_takes)

    store_content_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="an export's uri (s3://...), its record id, or its task id",
    )
    store_dict: dict[str, Any] | None = Field(
        default=None,
        description="an inline model store: not supported (422); give store_content_uri",
    )
    model_store_format: HistoryStoreFormat | None = Field(
        default=None,
        description="the archive's format, when the caller states it: it must be the "
        "export's own (bco.json cannot be imported)",
    )


# --- workflow extraction ---------------------------------------------------------------------


class OutputLabelIn(Strict):
    id: DbId
    kind: Literal["hda", "hdca"]
    label: NotBlank = Field(max_length=255)


class ExtractWorkflowRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            **at_least_one("job_ids", "hda_ids", "hdca_ids", "implicit_collection_jobs_ids"),
            "examples": [
                {
                    "workflow_name": "cat two files",
                    "from_history_id": 1,
                    "job_ids": [5],
                    "hda_ids": [12, 13],
                    "dataset_names": ["first", "second"],
                }
            ],
        }
    )

    workflow_name: str = Field(min_length=1, max_length=500)
    from_history_id: DbId | None = None
    job_ids: list[DbId] = unique_list(
        "tool runs (one job of a mapped run is refused: give its run)"
    )
    hda_ids: list[DbId] = unique_list()
    hdca_ids: list[DbId] = unique_list()
    implicit_collection_jobs_ids: list[DbId] = unique_list("mapped runs, by their group id")
    dataset_names: list[NotBlank] = unique_list("names of the hda_ids inputs, in order")
    dataset_collection_names: list[NotBlank] = unique_list("names of the hdca_ids inputs")
    output_labels: list[OutputLabelIn] = Field(default_factory=list)


class LegacyExtractRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            **at_least_one("job_ids", "dataset_hids", "dataset_collection_hids"),
            "examples": [
                {"workflow_name": "cat two files", "job_ids": [5], "dataset_hids": [1, 2]}
            ],
        }
    )

    workflow_name: str = Field(min_length=1, max_length=500)
    job_ids: list[DbId] = unique_list()
    dataset_hids: list[DbId] = unique_list()
    dataset_collection_hids: list[DbId] = unique_list()
    dataset_names: list[NotBlank] = unique_list()
    dataset_collection_names: list[NotBlank] = unique_list()


class ExtractionAccepted(BaseModel):
    """The extraction task; once it completed, also Galaxy's `WorkflowExtractionResult`
    (`id`, the workflow's id, the same as `workflow_id`)."""

    id: int | None = Field(default=None, description="the workflow's id, once extracted")
    task_id: str
    status: str
    workflow_id: int | None = None
    error: str | None = None


class WorkflowOut(BaseModel):
    id: int
    name: str
    task_id: str | None
    create_time: datetime
    step_count: int
    document: dict[str, Any]


class ExtractionOutput(BaseModel):
    """Galaxy's `WorkflowExtractionOutput` (without the naming hints)."""

    id: int
    hid: int
    name: str
    state: str
    deleted: bool
    history_content_type: Literal["dataset", "dataset_collection"]
    output_name: str | None = Field(
        default=None, description="the tool output it came from; null for input entries"
    )


class ExtractionJob(BaseModel):
    """Galaxy's `WorkflowExtractionJob`: a job (a mapped run once, as its first job),
    or an input entry (`id` null) for a dataset or collection that no job made."""

    id: int | None = Field(description="the job id; null for input entries")
    step_type: Literal["tool", "input_dataset", "input_collection"]
    tool_id: str | None = None
    tool_name: str | None = None
    tool_version: str | None = None
    checked: bool = Field(description="true when any of its outputs is not deleted")
    tool_version_warning: str | None = None
    outputs: list[ExtractionOutput] = Field(default_factory=list)
    implicit_collection_jobs_id: int | None = Field(
        default=None, description="a mapped run: extract it by implicit_collection_jobs_ids"
    )
    implicit_collection_jobs_size: int | None = Field(
        default=None, description="the number of jobs of the mapped run"
    )


class ExtractionSummary(BaseModel):
    """Galaxy's `WorkflowExtractionSummary`, jobs and input entries in history order."""

    history_id: int
    warnings: list[str] = Field(default_factory=list)
    jobs: list[ExtractionJob] = Field(default_factory=list)


class DeadLetter(BaseModel):
    queue: str
    message_id: str | None
    type: str | None
    reason: str | None
    principal: str | None = Field(
        default=None, description="the AMQP user that sent it (a replay acts for it)"
    )
    body_preview: str
    size: int


class ReplayRequest(Strict):
    queue: str | None = Field(default=None, description="a consumer queue; all of them when absent")
    limit: int = Field(default=100, ge=1, le=10_000)


class ReplayResult(BaseModel):
    replayed: int


# --- webhooks ------------------------------------------------------------------------

WebhookEventKind = Literal["completed", "failed", "cancelled", "expired", "progress", "all"]
WEBHOOK_URL = Field(
    min_length=1,
    max_length=2000,
    description="where deliveries are POSTed: http or https, a public address unless the "
    "deployment admits the network (loopback in development); its host must resolve",
    examples=["https://lims.example.org/hooks/waybill"],
)
WEBHOOK_EVENTS = Field(
    min_length=1,
    max_length=6,
    description="which task events: completed, failed, cancelled, expired (the task reached "
    "that status), progress (it started or moved on), or all",
)
WEBHOOK_SECRET = Field(
    default=None,
    pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$",
    max_length=200,
    description="the signing secret, 'whsec_' and base64 of 24 to 64 random bytes; "
    "made for you when absent (and shown once, in the answer)",
)


def _checked_url(url: str | None) -> str | None:
    return None if url is None else parse_url(url).url


def _checked_secret(secret: str | None) -> str | None:
    return None if secret is None else check_secret(secret)


class WebhookCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://lims.example.org/hooks/waybill", "events": ["completed", "failed"]}
            ]
        }
    )
    url: str = WEBHOOK_URL
    events: list[WebhookEventKind] = WEBHOOK_EVENTS
    secret: str | None = WEBHOOK_SECRET

    _url = field_validator("url")(_checked_url)
    _secret = field_validator("secret")(_checked_secret)


class WebhookUpdate(Strict):
    """Only what is given changes. `enabled: true` turns a disabled subscription on
    again (its count of failures starts afresh); `secret` replaces the secret."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"enabled": True}]})
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[WebhookEventKind] | None = Field(default=None, min_length=1, max_length=6)
    secret: str | None = WEBHOOK_SECRET
    enabled: bool | None = None

    _url = field_validator("url")(_checked_url)
    _secret = field_validator("secret")(_checked_secret)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    consecutive_failures: int = Field(description="delivery attempts failed in a row")
    disabled_reason: str | None = Field(
        description="why deliveries stopped, when they were stopped for failing"
    )
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret, shown this once")


class WebhookDeliveryOut(BaseModel):
    id: int
    webhook_id: int = Field(description="the subscription")
    message_id: str = Field(description="the `webhook-id` header, the same on every attempt")
    event: str = Field(description="completed, failed, cancelled, expired, progress or test")
    task_id: str | None = Field(description="the task's id (none for a test)")
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending (not yet delivered, retried), delivered, or failed (given up "
        "after the retry window)"
    )
    attempts: int
    response_code: int | None = Field(description="the receiver's HTTP status at the last attempt")
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="while pending")
    delivered_at: datetime | None
