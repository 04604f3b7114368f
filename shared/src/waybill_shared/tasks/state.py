"""The task state machine, pure: which status an event may move a task to, and how a
status event folds into a task's current state.

pending -> processing -> completed | failed | cancelled; pending -> cancelled | failed;
completed -> expired. Nothing moves backwards and terminal states stay terminal, so a
late or duplicated event can never undo what happened. Folding the same event twice
gives the same state, which is what lets the tracker fold a batch of deliveries before
it knows which of them are redeliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from waybill_shared.contracts.messages import TaskEvent

TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
ACTIVE = frozenset({"pending", "processing"})

_ALLOWED: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "completed", "failed", "cancelled"}),
    "processing": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset({"expired"}),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}

# What each event type asks the status to become (None: status unchanged).
EVENT_STATUS: dict[str, str | None] = {
    "processing": "processing",
    "progress": None,
    "item": None,
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}


def can_transition(current: str, new: str) -> bool:
    return new == current or new in _ALLOWED.get(current, frozenset())


def next_status(current: str, event: str) -> str:
    """The status after `event`; the current one when the event may not move it."""
    wanted = EVENT_STATUS.get(event)
    if wanted is None or (current in TERMINAL and wanted != "expired"):
        return current
    return wanted if can_transition(current, wanted) else current


def galaxy_task_state(status: str) -> str:
    """Galaxy's task API vocabulary (PENDING, STARTED, SUCCESS, FAILURE)."""
    return {
        "pending": "PENDING",
        "processing": "STARTED",
        "completed": "SUCCESS",
        "expired": "SUCCESS",
    }.get(status, "FAILURE")


@dataclass(frozen=True)
class TaskState:
    """What a status event can change on a task row."""

    status: str
    kind: str = ""
    progress: float = 0.0
    total_items: int = 0
    processed_items: int = 0
    failed_items: int = 0
    items: tuple[Any, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    artifact_key: str | None = None
    artifact_size: int | None = None
    artifact_sha256: str | None = None
    ttl_hours: int = 48
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    lease_expires_at: datetime | None = None


def with_status(state: TaskState, new: str, at: datetime) -> TaskState:
    """Move to `new` at `at`, setting the timestamps that transition implies."""
    if new == state.status:
        return state
    changes: dict[str, Any] = {"status": new}
    if new == "processing" and state.started_at is None:
        changes["started_at"] = at
    if new in TERMINAL and new != "expired":
        changes["completed_at"] = at
        changes["lease_expires_at"] = None
        if new == "completed":
            changes["progress"] = 100.0
            # ttl 0: the artifact is the caller's (a long-term export) and never expires.
            changes["expires_at"] = (
                at + timedelta(hours=state.ttl_hours) if state.ttl_hours else None
            )
    return replace(state, **changes)


def fold(state: TaskState, event: TaskEvent) -> TaskState:
    """The task after one status event from a worker.

    Monotonic: status follows `next_status`; progress and counters only grow. Events of
    one task may arrive out of order (several consumers), so per-item results and
    counters, facts that only grow, apply whenever they come; a finished task's status
    and result stay as they ended."""
    new = next_status(state.status, event.event)
    changes: dict[str, Any] = {
        "processed_items": max(state.processed_items, event.processed_items),
        "failed_items": max(state.failed_items, event.failed_items),
    }
    if state.status not in TERMINAL:
        changes["progress"] = max(state.progress, event.progress)
    # An index past the task's items is not one of its files: ignored (an event with
    # index 2**31 must not make the tracker build a list that long).
    in_range = event.item_index is not None and event.item_index < max(
        state.total_items, len(state.items)
    )
    if event.item is not None and event.item_index is not None and in_range:
        items = list(state.items)
        items.extend([None] * (event.item_index + 1 - len(items)))
        items[event.item_index] = event.item.model_dump(mode="json")
        changes["items"] = tuple(items)
    if new == "completed" and state.status != "completed":
        artifact = event.artifact.model_dump(mode="json") if event.artifact else {}
        if event.artifact is not None:
            changes["artifact_key"] = event.artifact.key
            changes["artifact_size"] = event.artifact.size
            changes["artifact_sha256"] = event.artifact.sha256
        changes["result"] = {**state.result, **event.result, "artifact": artifact}
    if new == "failed" and state.status != "failed":
        changes["error_message"] = event.error or "failed"
        changes["result"] = {**state.result, **event.result}
    return with_status(replace(state, **changes), new, event.occurred_at)
