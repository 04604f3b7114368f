"""Workflow extraction requests, the legacy HID form, the extraction summary, and
serving extracted workflows.

A request is checked here, synchronously, with the same pure validation the
extraction service runs (access to every item, then the request's own rules), so a
bad request is a 4xx at once and never a failed task later."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from waybill_gateway.repository import workflows as repository
from waybill_gateway.schemas import (
    ExtractionAccepted,
    ExtractWorkflowRequest,
    LegacyExtractRequest,
    WorkflowOut,
)
from waybill_shared import outbox
from waybill_shared.contracts.messages import ExtractionRequested, OutputLabel
from waybill_shared.db.models import Collection, Dataset, Task, User, Workflow
from waybill_shared.db.pg import driver_connection
from waybill_shared.errors import NotFound
from waybill_shared.extraction.documents import format2_key
from waybill_shared.extraction.requests import check_extraction_request
from waybill_shared.messaging.topology import Topology
from waybill_shared.provenance import access
from waybill_shared.storage import Storage
from waybill_shared.tasks.repository import register_task
from waybill_shared.tasks.state import TERMINAL


def to_command(body: ExtractWorkflowRequest, owner: User) -> ExtractionRequested:
    return ExtractionRequested(
        task_id=uuid.uuid4(),
        owner_id=owner.id,
        workflow_name=body.workflow_name,
        from_history_id=body.from_history_id,
        job_ids=body.job_ids,
        hda_ids=body.hda_ids,
        hdca_ids=body.hdca_ids,
        implicit_collection_jobs_ids=body.implicit_collection_jobs_ids,
        dataset_names=body.dataset_names,
        dataset_collection_names=body.dataset_collection_names,
        output_labels=[OutputLabel(**label.model_dump()) for label in body.output_labels],
    )


async def request_extraction(
    session: AsyncSession, *, user: User, body: ExtractWorkflowRequest, topology: Topology
) -> tuple[Task, outbox.OutboxEntry | None]:
    command = to_command(body, user)
    await check_extraction_request(session, user, command)
    registered = await register_task(
        await driver_connection(session),
        task_uuid=command.task_id,
        kind="workflow_extraction",
        owner_id=user.id,
        request=command.model_dump(mode="json"),
        ttl_hours=0,
        command=outbox.prepare(command, exchange=topology.commands_exchange),
    )
    task = await session.get(Task, registered.task.id)
    assert task is not None
    return task, registered.command


async def legacy_request(
    session: AsyncSession, *, user: User, history_id: int, body: LegacyExtractRequest
) -> ExtractWorkflowRequest:
    """Galaxy's HID-based form: HIDs of this history become ids."""
    history = await access.history(session, user, history_id)

    async def by_hid(
        model: type[Dataset] | type[Collection], hids: list[int], kind: str
    ) -> list[int]:
        rows = await repository.ids_by_hid(session, model, history_id=history.id, hids=hids)
        missing = [h for h in hids if h not in rows]
        if missing:
            raise NotFound(f"no {kind} with hid {missing[0]} in history {history.id}")
        return [rows[h] for h in hids]

    return ExtractWorkflowRequest(
        workflow_name=body.workflow_name,
        from_history_id=history.id,
        job_ids=body.job_ids,
        hda_ids=await by_hid(Dataset, body.dataset_hids, "dataset"),
        hdca_ids=await by_hid(Collection, body.dataset_collection_hids, "collection"),
        dataset_names=body.dataset_names,
        dataset_collection_names=body.dataset_collection_names,
    )


async def wait_for_task(
    sessions: async_sessionmaker[AsyncSession], task_id: int, seconds: float
) -> Task | None:
    """Poll until the task is terminal or `seconds` passed (Prefer: wait=N)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        async with sessions() as session:
            task = await session.get(Task, task_id)
        if task is None or task.status in TERMINAL:
            return task
        if loop.time() >= deadline:
            return task
        await asyncio.sleep(0.05)


def accepted(task: Task) -> ExtractionAccepted:
    result = task.result or {}
    workflow_id = result.get("workflow_id")
    return ExtractionAccepted(
        id=workflow_id,
        task_id=task.uuid,
        status=task.status,
        workflow_id=workflow_id,
        error=task.error_message if task.status in ("failed", "cancelled") else None,
    )


async def get_workflow(session: AsyncSession, *, user: User, workflow_id: int) -> Workflow:
    workflow = await session.get(Workflow, workflow_id)
    if workflow is None or not access.may_read(user, workflow.owner_id):
        raise NotFound(f"workflow {workflow_id} not found")
    return workflow


async def workflow_out(session: AsyncSession, storage: Storage, workflow: Workflow) -> WorkflowOut:
    task = await session.get(Task, workflow.task_id) if workflow.task_id else None
    document = json.loads(await storage.get_bytes(workflow.storage_key))
    return WorkflowOut(
        id=workflow.id,
        name=workflow.name,
        task_id=task.uuid if task else None,
        create_time=workflow.created_at,
        step_count=workflow.step_count,
        document=document,
    )


async def download(storage: Storage, workflow: Workflow, fmt: str) -> tuple[bytes, str, str]:
    """A stored document: the extraction service wrote the .ga and its gxformat2 form."""
    if fmt == "ga":
        return await storage.get_bytes(workflow.storage_key), "application/json", "ga"
    return (
        await storage.get_bytes(format2_key(workflow.storage_key)),
        "application/x-yaml",
        "gxwf.yml",
    )
