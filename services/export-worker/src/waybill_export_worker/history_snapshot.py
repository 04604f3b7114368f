"""Loading a history as a snapshot for export (a fixed number of queries, whatever
its size: no N+1), and writing an imported snapshot back as a new history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_export_worker.history_archive.model import (
    CollectionRecord,
    DatasetRecord,
    ElementRecord,
    FileRecord,
    HistoryRecord,
    HistorySnapshot,
    ImplicitCollectionJobsRecord,
    JobIO,
    JobRecord,
    WorkflowRecord,
)
from waybill_shared.clock import utcnow
from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    History,
    ImplicitCollectionJobs,
    Job,
    JobInput,
    JobOutput,
    StoredFile,
    Task,
    User,
    Workflow,
)
from waybill_shared.db.queries import among


@dataclass(frozen=True)
class LoadedHistory:
    snapshot: HistorySnapshot
    storage_keys: dict[int, str]  # dataset id -> S3 key of its bytes
    workflow_keys: dict[int, str]  # workflow id -> S3 key of its .ga document


async def load_history(
    session: AsyncSession,
    *,
    history_id: int,
    include_files: bool,
    include_hidden: bool,
    include_deleted: bool,
) -> LoadedHistory:
    history = await session.get(History, history_id)
    assert history is not None
    owner = await session.get(User, history.owner_id)
    collections = [
        c
        for c in (
            await session.execute(
                select(Collection)
                .where(Collection.history_id == history_id)
                .order_by(Collection.hid)
            )
        ).scalars()
        if (include_deleted or not c.deleted) and (include_hidden or c.visible)
    ]
    elements = list(
        (
            await session.execute(
                select(CollectionElement)
                .where(among(CollectionElement.collection_id, [c.id for c in collections]))
                .order_by(CollectionElement.element_index, CollectionElement.id)
            )
        ).scalars()
    )
    element_datasets = {e.dataset_id for e in elements if e.dataset_id is not None}
    rows = (
        await session.execute(
            select(Dataset, StoredFile)
            .join(StoredFile, StoredFile.id == Dataset.file_id)
            .where(Dataset.history_id == history_id)
            .order_by(Dataset.hid)
        )
    ).all()
    datasets: list[DatasetRecord] = []
    storage_keys: dict[int, str] = {}
    for d, f in rows:
        # Hidden datasets that are collection elements belong with their collection.
        if not include_deleted and d.deleted:
            continue
        if not include_hidden and not d.visible and d.id not in element_datasets:
            continue
        datasets.append(
            DatasetRecord(
                id=d.id,
                hid=d.hid,
                name=d.name,
                extension=d.extension,
                state=d.state,
                visible=d.visible,
                deleted=d.deleted,
                copied_from_id=d.copied_from_id,
                creating_job_id=d.creating_job_id,
                file=FileRecord(
                    sha256=f.sha256, size=f.size, format=f.format, metadata=dict(f.metadata_ or {})
                ),
            )
        )
        storage_keys[d.id] = f.storage_key
    jobs = list(
        (
            await session.execute(select(Job).where(Job.history_id == history_id).order_by(Job.id))
        ).scalars()
    )
    job_ids = [j.id for j in jobs]
    inputs: dict[int, list[JobIO]] = defaultdict(list)
    for i in (
        await session.execute(
            select(JobInput).where(among(JobInput.job_id, job_ids)).order_by(JobInput.id)
        )
    ).scalars():
        inputs[i.job_id].append(JobIO(name=i.name, src=i.src, id=i.ref_id))
    outputs: dict[int, list[JobIO]] = defaultdict(list)
    for o in (
        await session.execute(
            select(JobOutput).where(among(JobOutput.job_id, job_ids)).order_by(JobOutput.id)
        )
    ).scalars():
        outputs[o.job_id].append(JobIO(name=o.name, src=o.src, id=o.ref_id))
    groups = list(
        (
            await session.execute(
                select(ImplicitCollectionJobs)
                .where(ImplicitCollectionJobs.history_id == history_id)
                .order_by(ImplicitCollectionJobs.id)
            )
        ).scalars()
    )
    workflows = await _extracted_workflows(session, history)
    members: dict[int, list[int]] = defaultdict(list)
    for job in jobs:
        if job.implicit_collection_jobs_id is not None:
            members[job.implicit_collection_jobs_id].append(job.id)
    snapshot = HistorySnapshot(
        history=HistoryRecord(
            id=history.id,
            name=history.name,
            content_version=history.content_version,
            created_at=history.created_at,
            update_time=history.update_time,
            owner_name=owner.name if owner else "",
        ),
        datasets=tuple(datasets),
        collections=tuple(_collection_record(c, elements) for c in collections),
        jobs=tuple(
            JobRecord(
                id=j.id,
                tool_id=j.tool_id,
                tool_version=j.tool_version,
                parameters=dict(j.parameters or {}),
                state=j.state,
                implicit_collection_jobs_id=j.implicit_collection_jobs_id,
                inputs=tuple(inputs[j.id]),
                outputs=tuple(outputs[j.id]),
                created_at=j.created_at,
            )
            for j in jobs
        ),
        implicit_collection_jobs=tuple(
            ImplicitCollectionJobsRecord(
                id=g.id,
                tool_id=g.tool_id,
                map_over=list(g.map_over or []),
                job_ids=tuple(members[g.id]),
            )
            for g in groups
        ),
        exported_at=utcnow(),
        include_files=include_files,
        workflows=tuple(w for w, _ in workflows),
    )
    return LoadedHistory(snapshot, storage_keys, {w.id: key for w, key in workflows})


async def _extracted_workflows(
    session: AsyncSession, history: History
) -> list[tuple[WorkflowRecord, str]]:
    """The workflows extracted from this history (the extraction named it as
    from_history_id, as the HID form always does), with what each selected."""
    rows = await session.execute(
        select(Workflow, Task.request)
        .join(Task, Task.id == Workflow.task_id)
        .where(
            Workflow.owner_id == history.owner_id,
            Task.kind == "workflow_extraction",
            Task.request["from_history_id"].astext == str(history.id),
        )
        .order_by(Workflow.id)
    )

    def ids(request: dict[str, Any], key: str) -> tuple[int, ...]:
        return tuple(i for i in request.get(key) or () if isinstance(i, int))

    return [
        (
            WorkflowRecord(
                id=w.id,
                name=w.name,
                created_at=w.created_at,
                hda_ids=ids(request, "hda_ids"),
                hdca_ids=ids(request, "hdca_ids"),
                job_ids=ids(request, "job_ids"),
                implicit_collection_jobs_ids=ids(request, "implicit_collection_jobs_ids"),
            ),
            w.storage_key,
        )
        for w, request in rows.all()
    ]


def _collection_record(c: Collection, elements: list[CollectionElement]) -> CollectionRecord:
    children: dict[int | None, list[CollectionElement]] = defaultdict(list)
    for e in elements:
        if e.collection_id == c.id:
            children[e.parent_element_id].append(e)

    def build(parent: int | None) -> tuple[ElementRecord, ...]:
        return tuple(
            ElementRecord(
                id=e.id,
                identifier=e.identifier,
                dataset_id=e.dataset_id,
                child_collection_type=e.child_collection_type,
                elements=build(e.id) if e.child_collection_type else (),
            )
            for e in children[parent]
        )

    return CollectionRecord(
        id=c.id,
        hid=c.hid,
        name=c.name,
        collection_type=c.collection_type,
        visible=c.visible,
        deleted=c.deleted,
        copied_from_id=c.copied_from_id,
        creating_job_id=c.creating_job_id,
        implicit_collection_jobs_id=c.implicit_collection_jobs_id,
        implicit_output_name=c.implicit_output_name,
        implicit_input_collections=dict(c.implicit_input_collections or {}),
        elements=build(None),
    )


async def create_history_from_snapshot(
    session: AsyncSession,
    *,
    snapshot: HistorySnapshot,
    owner_id: int,
    files: dict[int, StoredFile],
) -> History:
    """A new history with the snapshot's datasets, collections, jobs and mapped runs,
    every reference re-pointed at the new rows. References to objects outside the
    archive (a copy's origin in another history) are dropped."""
    history = History(
        owner_id=owner_id,
        name=snapshot.history.name,
        hid_counter=max(
            [d.hid for d in snapshot.datasets] + [c.hid for c in snapshot.collections] + [0]
        ),
        content_version=1,
    )
    session.add(history)
    await session.flush()
    group_ids: dict[int, int] = {}
    for g in snapshot.implicit_collection_jobs:
        row = ImplicitCollectionJobs(
            history_id=history.id, owner_id=owner_id, tool_id=g.tool_id, map_over=[]
        )
        session.add(row)
        await session.flush()
        group_ids[g.id] = row.id
    job_ids: dict[int, int] = {}
    for j in snapshot.jobs:
        job = Job(
            history_id=history.id,
            owner_id=owner_id,
            tool_id=j.tool_id,
            tool_version=j.tool_version,
            parameters=j.parameters,
            state=j.state,
            implicit_collection_jobs_id=group_ids.get(j.implicit_collection_jobs_id or 0),
        )
        session.add(job)
        await session.flush()
        job_ids[j.id] = job.id
    dataset_ids: dict[int, int] = {}
    for d in snapshot.datasets:
        row_d = Dataset(
            history_id=history.id,
            hid=d.hid,
            name=d.name,
            extension=d.extension,
            state=d.state,
            visible=d.visible,
            deleted=d.deleted,
            file_id=files[d.id].id,
            creating_job_id=job_ids.get(d.creating_job_id or 0),
        )
        session.add(row_d)
        await session.flush()
        dataset_ids[d.id] = row_d.id
    for d in snapshot.datasets:  # copies within the history, once every dataset exists
        if d.copied_from_id in dataset_ids:
            row_copy = await session.get(Dataset, dataset_ids[d.id])
            assert row_copy is not None
            row_copy.copied_from_id = dataset_ids[d.copied_from_id]
    collection_ids: dict[int, int] = {}
    element_ids: dict[int, int] = {}
    for c in snapshot.collections:
        row_c = Collection(
            history_id=history.id,
            hid=c.hid,
            name=c.name,
            collection_type=c.collection_type,
            visible=c.visible,
            deleted=c.deleted,
            creating_job_id=job_ids.get(c.creating_job_id or 0),
            implicit_collection_jobs_id=group_ids.get(c.implicit_collection_jobs_id or 0),
            implicit_output_name=c.implicit_output_name,
        )
        session.add(row_c)
        await session.flush()
        collection_ids[c.id] = row_c.id
        await _add_elements(session, row_c.id, None, c.elements, dataset_ids, element_ids)
    for c in snapshot.collections:
        row_c2 = await session.get(Collection, collection_ids[c.id])
        assert row_c2 is not None
        if c.copied_from_id in collection_ids:
            row_c2.copied_from_id = collection_ids[c.copied_from_id]
        row_c2.implicit_input_collections = {
            name: collection_ids[old]
            for name, old in c.implicit_input_collections.items()
            if old in collection_ids
        }
    maps = {"hda": dataset_ids, "hdca": collection_ids, "dce": element_ids}
    for j in snapshot.jobs:
        for io in j.inputs:
            if io.id in maps[io.src]:
                session.add(
                    JobInput(
                        job_id=job_ids[j.id], name=io.name, src=io.src, ref_id=maps[io.src][io.id]
                    )
                )
        for io in j.outputs:
            if io.id in maps[io.src]:
                session.add(
                    JobOutput(
                        job_id=job_ids[j.id], name=io.name, src=io.src, ref_id=maps[io.src][io.id]
                    )
                )
    for g in snapshot.implicit_collection_jobs:
        row_g = await session.get(ImplicitCollectionJobs, group_ids[g.id])
        assert row_g is not None
        row_g.map_over = [_remap_map_over(m, collection_ids) for m in g.map_over]
    await session.flush()
    return history


def _remap_map_over(entry: dict[str, Any], collection_ids: dict[int, int]) -> dict[str, Any]:
    remapped = dict(entry)
    old = entry.get("id")
    remapped["id"] = collection_ids.get(old) if isinstance(old, int) else None
    return remapped


async def _add_elements(
    session: AsyncSession,
    collection_id: int,
    parent: int | None,
    elements: tuple[ElementRecord, ...],
    dataset_ids: dict[int, int],
    element_ids: dict[int, int],
) -> None:
    for index, e in enumerate(elements):
        row = CollectionElement(
            collection_id=collection_id,
            parent_element_id=parent,
            element_index=index,
            identifier=e.identifier,
            dataset_id=dataset_ids.get(e.dataset_id or 0),
            child_collection_type=e.child_collection_type,
        )
        session.add(row)
        await session.flush()
        element_ids[e.id] = row.id
        if e.elements:
            await _add_elements(
                session, collection_id, row.id, e.elements, dataset_ids, element_ids
            )
