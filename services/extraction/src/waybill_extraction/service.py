"""One extraction, as a leased task: check the request again (direct publishers get
the gateway's checks), build the workflow from the provenance graph, store the .ga
document and its gxformat2 form under keys derived from the task, record the
workflow once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import structlog

from waybill_extraction.format2 import format2_yaml
from waybill_extraction.repository import record_workflow, workflow_storage_keys
from waybill_shared.contracts.messages import ExtractionRequested
from waybill_shared.db.models import User
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import NotFound
from waybill_shared.extraction.documents import format2_key, ga_key
from waybill_shared.extraction.domain import ProvenanceGraph
from waybill_shared.extraction.requests import build_document, check_extraction_request
from waybill_shared.runtime import Runtime
from waybill_shared.storage import ObjectMissing
from waybill_shared.tasks.repository import TaskRow
from waybill_shared.tasks.runner import LeasedTask, TaskHandlers, TaskSpec, run_leased_task

log = structlog.get_logger(__name__)


def _documents(graph: ProvenanceGraph, request: ExtractionRequested) -> tuple[bytes, bytes, int]:
    """The .ga (JSON) and gxformat2 (YAML) bodies and the step count; blocking, run in
    one thread hop."""
    document = build_document(graph, request)
    return (
        json.dumps(document, indent=2).encode(),
        format2_yaml(document),
        len(document.get("steps", {})),
    )


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
        ga, format2, steps = await asyncio.to_thread(_documents, graph, request)
        leased.check_stop()
        storage_key = ga_key(request.task_id)
        # Both stored before the row exists, so a workflow that can be found can be
        # downloaded in either form.
        await asyncio.gather(
            runtime.storage.put_bytes(storage_key, ga),
            runtime.storage.put_bytes(
                format2_key(storage_key), format2, content_type="application/x-yaml"
            ),
        )
        leased.check_stop()
        async with unit_of_work(runtime.sessions) as session:
            workflow_id = await record_workflow(
                session,
                owner_id=request.owner_id,
                task_id=leased.task.id,
                name=request.workflow_name,
                storage_key=storage_key,
                step_count=steps,
            )
        await leased.emitter.emit(
            "completed", progress=100.0, result={"workflow_id": workflow_id, "steps": steps}
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


def _format2_of_ga(ga: bytes) -> bytes:
    return format2_yaml(json.loads(ga))


async def add_missing_format2(runtime: Runtime) -> int:
    """Workflows extracted before this service made the gxformat2 form (the gateway
    made it on first download) get it now, so that every workflow downloads in both
    forms. Once per start: one query and one listing of `workflows/`."""
    made = 0
    try:
        async with runtime.sessions() as session:
            ga_keys = await workflow_storage_keys(session)
        wanted = sorted(format2_key(key) for key in ga_keys)
        present = await runtime.storage.present(wanted, prefix="workflows/")
        for key in ga_keys:
            if format2_key(key) in present:
                continue
            try:
                ga = await runtime.storage.get_bytes(key)
            except ObjectMissing:
                continue  # the storage reconcile reports it
            body = await asyncio.to_thread(_format2_of_ga, ga)
            await runtime.storage.put_bytes(
                format2_key(key), body, content_type="application/x-yaml"
            )
            made += 1
    except Exception:
        # Not fatal: extraction works without it, and the next start tries again.
        log.warning("gxformat2 backfill stopped", made=made, exc_info=True)
    if made:
        log.info("gxformat2 documents made for earlier workflows", count=made)
    return made
