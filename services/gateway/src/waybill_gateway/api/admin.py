from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from waybill_gateway.api.common import PageDep, paginated
from waybill_gateway.deps import AdminUser, RuntimeDep
from waybill_gateway.schemas import DeadLetter, ReplayRequest, ReplayResult
from waybill_shared.messaging import dead_letters

router = APIRouter(prefix="/api/admin", tags=["administration"])


@router.get("/dead-letters", **paginated(DeadLetter))
async def list_dead_letters(
    runtime: RuntimeDep,
    _: AdminUser,
    page: PageDep,
    queue: Annotated[str | None, Query(max_length=300)] = None,
) -> list[DeadLetter]:
    """Parked messages with the reason each was refused (nothing is removed)."""
    letters, total = await dead_letters.list_dead_letters(
        runtime.broker, queue=queue, limit=page.limit, offset=page.offset
    )
    return page.answer([DeadLetter(**asdict(letter)) for letter in letters], total)


@router.post("/dead-letters/replay", response_model=ReplayResult)
async def replay_dead_letters(
    body: ReplayRequest, runtime: RuntimeDep, _: AdminUser
) -> ReplayResult:
    """Send parked messages back to the queue they came from."""
    count = await dead_letters.replay_dead_letters(
        runtime.broker, queue=body.queue, limit=body.limit
    )
    return ReplayResult(replayed=count)
