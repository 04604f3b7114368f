"""One extraction, as a leased task: check the request again (direct publishers get
the gateway's checks), build the workflow from the provenance graph, store the .ga
document under a key derived from the task, record the workflow once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from waybill_extraction.domain import ProvenanceGraph
from waybill_extraction.requests import build_document, check_extraction_request
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.db.models import User, Workflow
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import NotFound
from waybill_shared.runtime import Runtime
from waybill_shared.tasks.repository import TaskRow
from waybill_shared.tasks.runner import LeasedTask, TaskHandlers, TaskSpec, run_leased_task


def document_key(task_uuid: object) -> str:
    """The .ga document; its gxformat2 form is made beside it on first download."""
    return f"workflows/{task_uuid}/workflow.ga"


async def run_extraction(
    *,
    runtime: Runtime,
    request: ExtractionRequested,
    principal: str | None,
    ack: Callable[[], Awaitable[None]],
) -> None:
    async def authorize(task: TaskRow) -> ProvenanceGraph:
        async with unit_of_work(runtime.sessions) as session:
            user = await session.get(User, task.owner_id)
            if user is None:
                raise NotFound(f"user {task.owner_id} not found")
            # The graph the checks loaded is the one built from: loaded once per attempt.
            return await check_extraction_request(session, user, request)

    async def work(leased: LeasedTask, graph: ProvenanceGraph) -> None:
        document = await asyncio.to_thread(build_document, graph, request)
        leased.check_stop()
        ga_key = document_key(request.task_id)
        await runtime.storage.put_bytes(ga_key, json.dumps(document, indent=2).encode())
        leased.check_stop()
        async with unit_of_work(runtime.sessions) as session:
            # One workflow per task, whatever the number of attempts.
            await session.execute(
                insert(Workflow)
                .values(
                    owner_id=request.owner_id,
                    task_id=leased.task.id,
                    name=request.workflow_name,
                    storage_key=ga_key,
                    step_count=len(document.get("steps", {})),
                )
                .on_conflict_do_nothing(index_elements=[Workflow.task_id])
            )
            workflow_id = (
                await session.execute(select(Workflow.id).where(Workflow.task_id == leased.task.id))
            ).scalar_one()
        await leased.emitter.emit(
            "completed",
            progress=100.0,
            result={"workflow_id": workflow_id, "steps": len(document.get("steps", {}))},
        )

    await run_leased_task(
        runtime=runtime,
        spec=TaskSpec(
            task_uuid=request.task_id,
            kind="workflow_extraction",
            owner_id=request.owner_id,
            principal=principal,
            request=request.model_dump(mode="json"),
            ttl_hours=0,
        ),
        ack=ack,
        handlers=TaskHandlers(authorize, work),
    )
