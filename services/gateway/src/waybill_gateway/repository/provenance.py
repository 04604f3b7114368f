"""Histories, their contents, collections and jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    History,
    JobInput,
    JobOutput,
)
from waybill_shared.db.queries import among, fetch_page

M = TypeVar("M", Dataset, Collection)


async def histories_page(
    session: AsyncSession, *, owner_id: int | None, limit: int, offset: int
) -> tuple[list[History], int]:
    """Histories not deleted, by id; `owner_id` None: everyone's."""
    stmt = select(History).where(History.deleted.is_(False)).order_by(History.id)
    if owner_id is not None:
        stmt = stmt.where(History.owner_id == owner_id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def contents_page(
    session: AsyncSession, *, history_id: int, limit: int, offset: int
) -> tuple[list[Any], int]:
    """One page of a history's datasets and collections in hid order: rows of (hid,
    id, collection), and how many there are."""
    entries = union_all(
        select(Dataset.hid, Dataset.id, literal(False).label("collection")).where(
            Dataset.history_id == history_id
        ),
        select(Collection.hid, Collection.id, literal(True).label("collection")).where(
            Collection.history_id == history_id
        ),
    ).subquery()
    return await fetch_page(
        session,
        select(entries).order_by(entries.c.hid, entries.c.collection),
        limit=limit,
        offset=offset,
    )


async def by_ids(session: AsyncSession, model: type[M], ids: Sequence[int]) -> list[M]:
    if not ids:
        return []
    return list((await session.execute(select(model).where(among(model.id, ids)))).scalars())


async def collection_elements(session: AsyncSession, collection_id: int) -> list[CollectionElement]:
    """Every element of the collection, at every level, in element order."""
    return list(
        (
            await session.execute(
                select(CollectionElement)
                .where(CollectionElement.collection_id == collection_id)
                .order_by(CollectionElement.element_index, CollectionElement.id)
            )
        ).scalars()
    )


async def job_io(session: AsyncSession, job_id: int) -> tuple[list[JobInput], list[JobOutput]]:
    inputs = (
        await session.execute(
            select(JobInput).where(JobInput.job_id == job_id).order_by(JobInput.id)
        )
    ).scalars()
    outputs = (
        await session.execute(
            select(JobOutput).where(JobOutput.job_id == job_id).order_by(JobOutput.id)
        )
    ).scalars()
    return list(inputs), list(outputs)
