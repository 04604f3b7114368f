"""Histories and their contents, jobs: queries and API views. Recording itself lives
in waybill_shared.provenance (shared with the tracker's provenance consumer)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

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
    JobInput,
    JobOutput,
    User,
)
from waybill_shared.db.queries import among, fetch_page
from waybill_shared.provenance import access

M = TypeVar("M", Dataset, Collection)


async def create_history(session: AsyncSession, *, owner: User, name: str) -> History:
    history = History(owner_id=owner.id, name=name)
    session.add(history)
    await session.flush()
    await session.refresh(history)
    return history


async def list_histories(
    session: AsyncSession, *, user: User, limit: int, offset: int
) -> tuple[list[History], int]:
    stmt = select(History).where(History.deleted.is_(False)).order_by(History.id)
    if not user.is_admin:
        stmt = stmt.where(History.owner_id == user.id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


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
    entries = union_all(
        select(Dataset.hid, Dataset.id, literal(False).label("collection")).where(
            Dataset.history_id == history_id
        ),
        select(Collection.hid, Collection.id, literal(True).label("collection")).where(
            Collection.history_id == history_id
        ),
    ).subquery()
    rows, total = await fetch_page(
        session,
        select(entries).order_by(entries.c.hid, entries.c.collection),
        limit=limit,
        offset=offset,
    )
    datasets = [r.id for r in rows if not r.collection]
    collections = [r.id for r in rows if r.collection]
    items = [dataset_item(d) for d in await _by_ids(session, Dataset, datasets)] + [
        collection_item(c) for c in await _by_ids(session, Collection, collections)
    ]
    return sorted(items, key=lambda i: (i.hid, i.history_content_type)), total


async def _by_ids(session: AsyncSession, model: type[M], ids: list[int]) -> list[M]:
    if not ids:
        return []
    return list((await session.execute(select(model).where(among(model.id, ids)))).scalars())


def dataset_out(d: Dataset) -> DatasetOut:
    return DatasetOut(
        **dataset_item(d).model_dump(),
        file_id=d.file_id,
        copied_from_id=d.copied_from_id,
        creating_job_id=d.creating_job_id,
    )


async def collection_out(session: AsyncSession, c: Collection) -> CollectionOut:
    rows = list(
        (
            await session.execute(
                select(CollectionElement)
                .where(CollectionElement.collection_id == c.id)
                .order_by(CollectionElement.element_index, CollectionElement.id)
            )
        ).scalars()
    )
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
    inputs = (
        await session.execute(
            select(JobInput).where(JobInput.job_id == job.id).order_by(JobInput.id)
        )
    ).scalars()
    outputs = (
        await session.execute(
            select(JobOutput).where(JobOutput.job_id == job.id).order_by(JobOutput.id)
        )
    ).scalars()
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
