"""The database schema: the catalog, the provenance graph, tasks and their events.

One module so a reader sees every table at once; Alembic migrations under
`migrations/` create exactly these.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSON = dict[str, Any]


class Base(DeclarativeBase):
    type_annotation_map = {JSON: JSONB, list[Any]: JSONB}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _now()
    # Live uploads plus completed artifacts, in bytes: kept by triggers on `files` and
    # `tasks` (migration 0010), never written by the services.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # This user's quotas; NULL takes the deployment's default (the `quota_*` settings).
    quota_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    quota_running_exports: Mapped[int | None] = mapped_column(Integer)
    quota_files_per_export: Mapped[int | None] = mapped_column(Integer)


class ApiKey(Base):
    """A named API key of a user: stored as its SHA-256 digest (shown once), with its
    first characters to tell keys apart, an optional expiry and when it was last used
    (recorded at most once a minute, see waybill_gateway.auth)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_api_keys_user_name"),)


class ServiceAccount(Base):
    """A system that publishes commands straight to the broker as the AMQP user
    `amqp_user`, for its own user only, for `user_ids`, or for any user (see
    waybill_shared.principals)."""

    __tablename__ = "service_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    amqp_user: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    acts_for: Mapped[str] = mapped_column(String(8))
    user_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list, server_default="{}")
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint(
            "acts_for IN ('self', 'users', 'any')", name="ck_service_accounts_acts_for"
        ),
    )


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class StoredFile(Base):
    """A file in the catalog; its bytes live in S3 under `storage_key`."""

    __tablename__ = "files"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    filename: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32))
    metadata_: Mapped[JSON] = mapped_column("metadata", JSONB, default=dict)
    storage_key: Mapped[str] = mapped_column(String(1024))
    uploaded_at: Mapped[datetime] = _now()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the tracker's storage reconcile when the bytes are no longer in S3 (and
    # cleared if they come back): the content answers 410, exports fail the file.
    missing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        # The reconcile reads the live files in S3's (bytewise) key order.
        Index(
            "ix_files_live_storage_key",
            text('storage_key COLLATE "C"'),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


# --- provenance: histories, datasets (HDA), collections (HDCA), jobs -------------------


class History(Base):
    __tablename__ = "histories"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    # Moves on every change of the contents: reuse of exports is keyed on it.
    content_version: Mapped[int] = mapped_column(Integer, default=0)
    hid_counter: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _now()
    update_time: Mapped[datetime] = _now()


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    history_id: Mapped[int] = mapped_column(ForeignKey("histories.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    tool_id: Mapped[str] = mapped_column(String(500))
    tool_version: Mapped[str | None] = mapped_column(String(100))
    parameters: Mapped[JSON] = mapped_column(JSONB, default=dict)
    state: Mapped[str] = mapped_column(String(32), default="ok")
    implicit_collection_jobs_id: Mapped[int | None] = mapped_column(
        ForeignKey("implicit_collection_jobs.id"), index=True
    )
    created_at: Mapped[datetime] = _now()


class ImplicitCollectionJobs(Base):
    """A mapped run: one job per element of the collection(s) mapped over."""

    __tablename__ = "implicit_collection_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    history_id: Mapped[int] = mapped_column(ForeignKey("histories.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    tool_id: Mapped[str] = mapped_column(String(500))
    # [{"name", "hdca_id", "subcollection_type"}]
    map_over: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = _now()


class Dataset(Base):
    """A history dataset association (HDA)."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    history_id: Mapped[int] = mapped_column(ForeignKey("histories.id"), index=True)
    hid: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(1024))
    extension: Mapped[str] = mapped_column(String(64), default="data")
    state: Mapped[str] = mapped_column(String(32), default="ok")
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), index=True)
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    creating_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (UniqueConstraint("history_id", "hid", name="uq_datasets_history_hid"),)


class Collection(Base):
    """A history dataset collection association (HDCA) and its root elements."""

    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(primary_key=True)
    history_id: Mapped[int] = mapped_column(ForeignKey("histories.id"), index=True)
    hid: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(1024))
    collection_type: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(32), default="ok")
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id"), index=True)
    creating_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    implicit_collection_jobs_id: Mapped[int | None] = mapped_column(
        ForeignKey("implicit_collection_jobs.id"), index=True
    )
    implicit_output_name: Mapped[str | None] = mapped_column(String(200))
    # input name -> HDCA id the run was mapped over
    implicit_input_collections: Mapped[JSON] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (UniqueConstraint("history_id", "hid", name="uq_collections_history_hid"),)


class CollectionElement(Base):
    """A collection element (DCE): a leaf dataset or an inner sub-collection."""

    __tablename__ = "collection_elements"
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    parent_element_id: Mapped[int | None] = mapped_column(
        ForeignKey("collection_elements.id"), index=True
    )
    element_index: Mapped[int] = mapped_column(Integer)
    identifier: Mapped[str] = mapped_column(String(500))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    child_collection_type: Mapped[str | None] = mapped_column(String(200))


class JobInput(Base):
    __tablename__ = "job_inputs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    src: Mapped[str] = mapped_column(String(8))  # hda | hdca | dce
    ref_id: Mapped[int] = mapped_column(Integer)


class JobOutput(Base):
    __tablename__ = "job_outputs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    src: Mapped[str] = mapped_column(String(8))  # hda | hdca
    ref_id: Mapped[int] = mapped_column(Integer, index=True)


# --- tasks: every unit of asynchronous work and its event log ---------------------------


class Task(Base):
    """One asynchronous task (a batch export, a history export or import, an extraction).

    Status is monotonic (see `waybill_shared.tasks`). `attempt`, `lease_owner` and
    `lease_expires_at` implement leases: a worker claims a task with a conditional
    UPDATE, heartbeats while working, and the tracker re-dispatches expired leases.
    """

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    job_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    processed_items: Mapped[int] = mapped_column(Integer, default=0)
    failed_items: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    request: Mapped[JSON] = mapped_column(JSONB, default=dict)
    result: Mapped[JSON] = mapped_column(JSONB, default=dict)
    error_message: Mapped[str | None] = mapped_column(Text)
    artifact_key: Mapped[str | None] = mapped_column(String(1024))
    artifact_size: Mapped[int | None] = mapped_column(BigInteger)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ttl_hours: Mapped[int] = mapped_column(Integer, default=48)
    # The AMQP user that asked for the task when it came straight from the broker (its
    # events are routed to it); NULL when it was asked for over HTTP.
    principal: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (
        Index(
            "uq_tasks_owner_kind_job_key",
            "owner_id",
            "kind",
            "job_key",
            unique=True,
            postgresql_where=text("job_key IS NOT NULL"),
        ),
        Index("ix_tasks_kind_status", "kind", "status"),
        # The running-exports quota counts through it (never past the quota).
        Index(
            "ix_tasks_owner_unfinished",
            "owner_id",
            "kind",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )


class TaskEvent(Base):
    """The event log. (task, attempt, seq) is unique: a redelivered event is a no-op."""

    __tablename__ = "task_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(default=0.0)
    payload: Mapped[JSON] = mapped_column(JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = _now()
    __table_args__ = (UniqueConstraint("task_id", "attempt", "seq", name="uq_task_events_seq"),)


class ExportAssociation(Base):
    """A history export (Galaxy's StoreExportAssociation), with first-class columns
    for what reuse and listing query on."""

    __tablename__ = "export_associations"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    destination: Mapped[str] = mapped_column(String(16))  # short_term | remote
    params_hash: Mapped[str] = mapped_column(String(64))
    content_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    request_data: Mapped[JSON] = mapped_column(JSONB, default=dict)
    result_data: Mapped[JSON] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_export_assoc_object", "object_type", "object_id", "created_at"),
        Index("ix_export_assoc_reuse", "object_type", "object_id", "params_hash", "status"),
    )


class Workflow(Base):
    __tablename__ = "workflows"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    storage_key: Mapped[str] = mapped_column(String(1024))
    step_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _now()


class OutboxMessage(Base):
    """Transactional outbox: written in the same transaction as the task it announces,
    published (with broker confirms) by a relay, then marked."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange: Mapped[str] = mapped_column(String(200))
    routing_key: Mapped[str] = mapped_column(String(200))
    message_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[JSON] = mapped_column(JSONB)
    headers: Mapped[JSON] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = _now()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


class InboxMessage(Base):
    """Messages from other systems already applied: a redelivery is a no-op."""

    __tablename__ = "inbox"
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = _now()


# --- webhooks: subscriptions to task events, and their durable deliveries ---------------


class WebhookSubscription(Base):
    """A user's subscription to their tasks' events (see waybill_shared.webhooks).
    `events` holds kinds (completed, failed, cancelled, expired, progress) or `all`.
    `secret` signs every delivery, so it is kept as given (never shown again after the
    create). Disabled after too many failed attempts in a row, with the reason."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    secret: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (
        # The join every tracker batch makes (cheap when nobody subscribes).
        Index(
            "ix_webhook_subscriptions_owner_enabled",
            "owner_id",
            postgresql_where=text("enabled"),
        ),
        Index("ix_webhook_subscriptions_owner", "owner_id", "id"),
    )


class WebhookDelivery(Base):
    """One message to one subscription, inserted in the transaction that recorded its
    task event, sent (and retried) by the tracker's delivery loop until it is
    delivered or given up. `message_id` is the `webhook-id` header, the same on every
    attempt."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(
        String(64),
        unique=True,
        server_default=text("'msg_' || replace(gen_random_uuid()::text, '-', '')"),
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("task_events.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = _now()
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_status"
        ),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        Index("ix_webhook_deliveries_task", "task_id"),
        Index("ix_webhook_deliveries_event", "event_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )
