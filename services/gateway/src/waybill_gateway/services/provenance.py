"""Histories and their contents, jobs: who may read them, and their API views (the
queries: repository/provenance.py). Recording itself lives in
waybill_shared.provenance (shared with the tracker's provenance consumer)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.repository import provenance as repository
from waybill_gateway.schemas import (
    CollectionOut,
    ContentItem,
    DatasetOut,
    ElementOut,
    HistoryOut,
    JobIOOut,
    JobOut,
)
from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    History,
    Job,
    User,
)
from waybill_shared.provenance import access


async def create_history(session: AsyncSession, *, owner: User, name: str) -> History:
    history = History(owner_id=owner.id, name=name)
    session.add(history)
    await session.flush()
    await session.refresh(history)
    return history


async def list_histories(
    session: AsyncSession, *, user: User, limit: int, offset: int
) -> tuple[list[History], int]:
    owner_id = None if user.is_admin else user.id
    return await repository.histories_page(session, owner_id=owner_id, limit=limit, offset=offset)


def history_out(history: History) -> HistoryOut:
    return HistoryOut(
        id=history.id,
        name=history.name,
        update_time=history.update_time,
        create_time=history.created_at,
        content_version=history.content_version,
        user_id=history.owner_id,
    )


def dataset_item(d: Dataset) -> ContentItem:
    return ContentItem(
        id=d.id,
        hid=d.hid,
        history_id=d.history_id,
        history_content_type="dataset",
        name=d.name,
        extension=d.extension,
        state=d.state,
        visible=d.visible,
        deleted=d.deleted,
    )


def collection_item(c: Collection) -> ContentItem:
    return ContentItem(
        id=c.id,
        hid=c.hid,
        history_id=c.history_id,
        history_content_type="dataset_collection",
        name=c.name,
        collection_type=c.collection_type,
        state=c.state,
        visible=c.visible,
        deleted=c.deleted,
    )


async def contents(
    session: AsyncSession, *, user: User, history_id: int, limit: int, offset: int
) -> tuple[list[ContentItem], int]:
    """One page of a history's datasets and collections, in hid order."""
    await access.history(session, user, history_id)
    rows, total = await repository.contents_page(
        session, history_id=history_id, limit=limit, offset=offset
    )
    datasets = [r.id for r in rows if not r.collection]
    collections = [r.id for r in rows if r.collection]
    items = [dataset_item(d) for d in await repository.by_ids(session, Dataset, datasets)] + [
        collection_item(c) for c in await repository.by_ids(session, Collection, collections)
    ]
    return sorted(items, key=lambda i: (i.hid, i.history_content_type)), total


def dataset_out(d: Dataset) -> DatasetOut:
    return DatasetOut(
        **dataset_item(d).model_dump(),
        file_id=d.file_id,
        copied_from_id=d.copied_from_id,
        creating_job_id=d.creating_job_id,
    )


async def collection_out(session: AsyncSession, c: Collection) -> CollectionOut:
    rows = await repository.collection_elements(session, c.id)
    children: dict[int | None, list[CollectionElement]] = {}
    for row in rows:
        children.setdefault(row.parent_element_id, []).append(row)

    def build(parent: int | None) -> list[ElementOut]:
        return [
            ElementOut(
                id=e.id,
                element_identifier=e.identifier,
                dataset_id=e.dataset_id,
                collection_type=e.child_collection_type,
                elements=build(e.id) if e.child_collection_type else None,
            )
            for e in children.get(parent, [])
        ]

    return CollectionOut(
        **collection_item(c).model_dump(),
        copied_from_id=c.copied_from_id,
        creating_job_id=c.creating_job_id,
        implicit_collection_jobs_id=c.implicit_collection_jobs_id,
        implicit_output_name=c.implicit_output_name,
        implicit_input_collections=c.implicit_input_collections or {},
        elements=build(None),
    )


async def job_out(session: AsyncSession, job: Job) -> JobOut:
    inputs, outputs = await repository.job_io(session, job.id)
    return JobOut(
        id=job.id,
        history_id=job.history_id,
        tool_id=job.tool_id,
        tool_version=job.tool_version,
        parameters=job.parameters,
        state=job.state,
        create_time=job.created_at,
        implicit_collection_jobs_id=job.implicit_collection_jobs_id,
        inputs=[JobIOOut(name=i.name, src=i.src, id=i.ref_id) for i in inputs],
        outputs=[JobIOOut(name=o.name, src=o.src, id=o.ref_id) for o in outputs],
    )


def content_view(obj: Dataset | Collection) -> dict[str, Any]:
    return (dataset_item(obj) if isinstance(obj, Dataset) else collection_item(obj)).model_dump()
