"""The tracker's schedule (waybill_tracker.service.every): a failing run is logged and
the next one comes; a stop (cancel) is never swallowed."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from waybill_tracker.service import every


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("failure", "logged"),
    [
        # A backing service away: a warning, the next run will find it back.
        (
            ConnectionRefusedError("database away"),
            ("scheduled job waits for a backing service", "warning"),
        ),
        # Anything else: an error with its traceback.
        (KeyError("a bug"), ("scheduled job failed", "error")),
    ],
)
async def test_a_failing_run_is_logged_and_the_schedule_goes_on(
    failure: Exception, logged: tuple[str, str]
) -> None:
    runs: list[int] = []
    third_run = asyncio.Event()

    async def sweep() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third_run.set()
        if len(runs) == 1:
            raise failure

    with capture_logs() as logs:
        scheduled = asyncio.create_task(every(0.01, sweep, "leases"))
        await asyncio.wait_for(third_run.wait(), 5)
        scheduled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await scheduled
    assert [(e["event"], e["log_level"], e["job"]) for e in logs] == [(*logged, "leases")]


@pytest.mark.asyncio
async def test_a_stop_during_a_run_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    scheduled = asyncio.create_task(every(0.01, slow, "reconcile"))
    await asyncio.wait_for(started.wait(), 5)
    scheduled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(scheduled, 5)
    assert scheduled.cancelled()
