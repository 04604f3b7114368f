"""The task state machine and the fold of status events, pure: every status against
every event, and the properties the tracker relies on to fold a batch of deliveries
before it knows which of them are repeats."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from waybill_shared.contracts.messages import Artifact, ItemResult, TaskEvent
from waybill_shared.tasks.state import (
    EVENT_STATUS,
    TERMINAL,
    TaskState,
    fold,
    next_status,
    with_status,
)

STATUSES = ["pending", "processing", "completed", "failed", "cancelled", "expired"]
WORKER_EVENTS = ["processing", "progress", "item", "completed", "failed", "cancelled"]
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

# status x event -> the status after it (the whole table, written out).
EXPECTED = {
    "pending": {
        "processing": "processing",
        "progress": "pending",
        "item": "pending",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "expired": "pending",
    },
    "processing": {
        "processing": "processing",
        "progress": "processing",
        "item": "processing",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "expired": "processing",
    },
    "completed": {e: "completed" for e in EVENT_STATUS} | {"expired": "expired"},
    "failed": {e: "failed" for e in EVENT_STATUS},
    "cancelled": {e: "cancelled" for e in EVENT_STATUS},
    "expired": {e: "expired" for e in EVENT_STATUS},
}


@pytest.mark.parametrize(("status", "event"), itertools.product(STATUSES, EVENT_STATUS))
def test_every_status_against_every_event(status: str, event: str) -> None:
    assert next_status(status, event) == EXPECTED[status][event]


def test_nothing_moves_backwards() -> None:
    order = {"pending": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2}
    order["expired"] = 3
    for status, event in itertools.product(STATUSES, EVENT_STATUS):
        assert order[next_status(status, event)] >= order[status]
        if status in TERMINAL and status != "completed":
            assert next_status(status, event) == status


def event(name: str, seq: int = 1, **fields: object) -> TaskEvent:
    return TaskEvent(
        task_id=uuid.UUID(int=1),
        kind="data_export",
        attempt=1,
        seq=seq,
        event=name,  # type: ignore[arg-type]
        occurred_at=AT + timedelta(seconds=seq),
        **fields,  # type: ignore[arg-type]
    )


ITEM = ItemResult(filename="a.csv", status="completed", output_name="a.parquet", size=10)
ARTIFACT = Artifact(key="exports/x/export.zip", size=99, sha256="0" * 64, filename="x.zip")


def events_of_one_export() -> list[TaskEvent]:
    return [
        event("processing", 1),
        event("progress", 2, progress=40.0),
        event("item", 3, item=ITEM, item_index=0, processed_items=1, progress=99.0),
        event("completed", 4, artifact=ARTIFACT, processed_items=1, progress=100.0),
    ]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", WORKER_EVENTS)
def test_folding_an_event_twice_changes_nothing_more(status: str, name: str) -> None:
    """What lets the tracker fold a batch with its redeliveries in it."""
    state = TaskState(status=status, progress=10.0, started_at=AT, total_items=2)
    e = event(name, 5, progress=50.0, item=ITEM, item_index=1, artifact=ARTIFACT, error="x")
    once = fold(state, e)
    assert fold(once, e) == once
    assert once.status == next_status(status, name)


def test_an_export_folds_to_completed_with_its_results() -> None:
    state = TaskState(status="pending", ttl_hours=2, total_items=1)
    for e in events_of_one_export():
        state = fold(state, e)
    assert state.status == "completed" and state.progress == 100.0
    assert state.items == (ITEM.model_dump(mode="json"),)
    assert state.artifact_key == ARTIFACT.key and state.artifact_size == 99
    assert state.result["artifact"]["filename"] == "x.zip"
    completed_at = AT + timedelta(seconds=4)
    assert state.started_at == AT + timedelta(seconds=1)
    assert state.completed_at == completed_at
    assert state.expires_at == completed_at + timedelta(hours=2)
    assert state.lease_expires_at is None


def test_events_out_of_order_end_the_same() -> None:
    """Several consumers may deliver a task's events in any order: facts that only grow
    apply whenever they come, and the status never goes back."""
    ends = []
    for order in itertools.permutations(events_of_one_export()):
        state = TaskState(status="pending", total_items=1)
        for e in order:
            state = fold(state, e)
        ends.append((state.status, state.progress, state.processed_items, state.items))
    assert ends == [("completed", 100.0, 1, (ITEM.model_dump(mode="json"),))] * len(ends)


def test_progress_never_goes_back_and_stops_at_the_end() -> None:
    state = fold(TaskState(status="processing", progress=60.0), event("progress", 2, progress=30.0))
    assert state.progress == 60.0
    done = fold(state, event("completed", 3, progress=100.0))
    late = fold(done, event("progress", 4, progress=50.0))
    assert late.progress == 100.0 and late.status == "completed"


def test_a_finished_task_keeps_its_result() -> None:
    failed = fold(TaskState(status="processing"), event("failed", 2, error="disk full"))
    assert failed.error_message == "disk full"
    after = fold(failed, event("completed", 3, artifact=ARTIFACT))
    assert after.status == "failed" and after.artifact_key is None


def test_long_term_exports_never_expire() -> None:
    state = with_status(TaskState(status="processing", ttl_hours=0), "completed", AT)
    assert state.expires_at is None and state.completed_at == AT


def test_an_item_index_past_the_tasks_files_is_ignored() -> None:
    state = TaskState(status="processing", total_items=2)
    far = fold(state, event("item", 2, item=ITEM, item_index=2**31))
    assert far.items == ()
    near = fold(state, event("item", 3, item=ITEM, item_index=1))
    assert near.items == (None, ITEM.model_dump(mode="json"))
