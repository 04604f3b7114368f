"""The task state machine, pure: which status an event may move a task to.

pending -> processing -> completed | failed | cancelled; pending -> cancelled | failed;
completed -> expired. Nothing moves backwards and terminal states stay terminal, so a
late or duplicated event can never undo what happened.
"""

from __future__ import annotations

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
