"""What a delivery's body holds, in the Standard Webhooks shape `{type, timestamp,
data}`: the tracker builds it with these models, and the gateway's OpenAPI document
describes it with them (its `webhooks` section)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from waybill_shared.contracts.messages import TaskStatus

MessageType = Literal[
    "task.completed",
    "task.failed",
    "task.cancelled",
    "task.expired",
    "task.progress",
    "webhook.test",
]


class FileLink(BaseModel):
    output_name: str | None
    download_url: str


class TaskView(BaseModel):
    """The task as it is when the delivery is sent."""

    id: int = Field(description="the job's id (GET /api/data-export/jobs/{id} for a batch export)")
    task_id: str = Field(description="the task's id (GET /api/tasks/{task_id}/...)")
    kind: str = Field(description="data_export, history_export, history_import or extraction")
    name: str | None
    job_key: str | None
    status: TaskStatus
    progress: int = Field(ge=0, le=100, description="whole percent, 100 only when completed")
    total_items: int
    processed_items: int
    failed_items: int
    error_message: str | None
    output_size: int | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    download_url: str | None = Field(
        description="the artifact, signed when this delivery was sent (an hour at most, never "
        "past the artifact's expiry); null when there is none"
    )
    files: list[FileLink] = Field(
        default_factory=list,
        description="each file's own link, for several files exported with compress: false",
    )


class EventView(BaseModel):
    """The status event, as recorded."""

    type: str = Field(
        description="processing, progress, item, completed, failed, cancelled, expired"
    )
    status: TaskStatus = Field(description="the task's status once this event was applied")
    progress: int
    attempt: int
    seq: int
    occurred_at: datetime
    error: str | None


class TaskEventData(BaseModel):
    event: EventView
    task: TaskView


class PingData(BaseModel):
    """A test delivery's (POST /api/webhooks/{id}/test)."""

    webhook_id: int
    message: str


class WebhookMessage(BaseModel):
    """The JSON body of every delivery."""

    type: MessageType
    timestamp: datetime = Field(description="when this attempt was sent")
    data: TaskEventData | PingData
