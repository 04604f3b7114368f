"""The task-change notices: payloads (pure) and the listener's fan-out, without a
database (the real LISTEN path is tested end to end in tests/e2e/test_event_streams.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from waybill_shared.tasks.notify import MAX_PAYLOAD_BYTES, TaskListener, payloads, task_ids


def test_one_payload_for_a_batch_sorted_and_without_repeats() -> None:
    assert payloads([12, 3, 12, 7]) == ["3,7,12"]
    assert payloads([]) == []


def test_a_huge_batch_is_split_under_postgresql_payload_limit() -> None:
    ids = list(range(1_000_000, 1_003_000))
    chunks = payloads(ids)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= MAX_PAYLOAD_BYTES for chunk in chunks)
    assert [i for chunk in chunks for i in task_ids(chunk)] == ids


def test_a_payload_that_is_not_ours_names_nothing_else() -> None:
    assert task_ids("4,x, 5,,-1,6") == [4, 5, 6]
    assert task_ids("") == []


async def no_connection() -> asyncpg.Connection:
    raise AssertionError("not connected in this test")


@pytest.mark.asyncio
async def test_a_notice_wakes_the_subscribers_of_its_tasks_only() -> None:
    listener = TaskListener(no_connection)
    first, second, other = (listener.subscribe(1), listener.subscribe(1), listener.subscribe(2))
    listener._on_notice(None, 0, "", "1,3")
    assert await first.wait(0.01) and await second.wait(0.01)
    assert not await other.wait(0.01)
    assert not await first.wait(0.01)  # woken once per notice
    first.close()
    second.close()
    other.close()
    assert listener.subscribers == 0


@pytest.mark.asyncio
async def test_a_notice_between_reading_and_subscribing_is_not_missed() -> None:
    listener = TaskListener(no_connection)
    since = listener.generation
    listener._on_notice(None, 0, "", "9")  # while the caller was reading task 9
    late = listener.subscribe(9, since=since)
    assert await late.wait(0.01)
    quiet = listener.subscribe(9, since=listener.generation)
    assert not await quiet.wait(0.01)


@pytest.mark.asyncio
async def test_closing_wakes_every_stream() -> None:
    listener = TaskListener(no_connection)
    subscription = listener.subscribe(5)
    waiting = asyncio.create_task(subscription.wait(5))
    await asyncio.sleep(0)
    listener.close_streams()
    assert await waiting and listener.closing
