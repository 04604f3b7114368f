"""Which task events a subscription hears.

A subscription names kinds: `completed`, `failed`, `cancelled`, `expired` (a task
reached that status) and `progress` (it started, or moved on, while still running);
`all` is every kind, including any added later."""

from __future__ import annotations

from collections.abc import Iterable

from waybill_shared.tasks.state import TERMINAL

STATUS_KINDS = ("completed", "failed", "cancelled", "expired")
KINDS = (*STATUS_KINDS, "progress")
ALL = "all"
# A delivery asked for with POST /api/webhooks/{id}/test; no task behind it.
TEST = "test"
_PROGRESS_EVENTS = frozenset({"processing", "progress", "item"})


def normalize(events: Iterable[str]) -> list[str]:
    """The kinds as stored: known ones only, no repeats, `all` alone when named."""
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in (*KINDS, ALL)]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}: expected one of {', '.join(KINDS)} or all")
    if not chosen:
        raise ValueError(f"name at least one event: {', '.join(KINDS)} or all")
    return [ALL] if ALL in chosen else chosen


def kind_of(event_type: str, before: str, after: str) -> str | None:
    """The webhook kind of a status event that moved a task from `before` to `after`
    (None: no webhook). A terminal kind only when the event did move the task there
    (a late `completed` after a cancel is not a completion); progress only while the
    task was still running."""
    if event_type in STATUS_KINDS:
        return event_type if after == event_type and before != after else None
    if event_type in _PROGRESS_EVENTS and before not in TERMINAL and after not in TERMINAL:
        return "progress"
    return None


def matches(subscribed: Iterable[str], kind: str) -> bool:
    """Whether a subscription to `subscribed` hears `kind` (the SQL join's rule:
    `events && ARRAY[kind, 'all']`)."""
    names = set(subscribed)
    return kind in names or ALL in names
