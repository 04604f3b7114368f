"""Reading provenance objects on behalf of a user: another user's object is
NotFound, exactly like an unknown one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import (
    Collection,
    CollectionElement,
    Dataset,
    History,
    Job,
    StoredFile,
    User,
)
from waybill_shared.errors import NotFound


def may_read(user: User, owner_id: int) -> bool:
    return user.is_admin or user.id == owner_id


async def history(
    session: AsyncSession, user: User, history_id: int, *, lock: bool = False
) -> History:
    stmt = select(History).where(History.id == history_id, History.deleted.is_(False))
    if lock:
        stmt = stmt.with_for_update()
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None or not may_read(user, found.owner_id):
        raise NotFound(f"history {history_id} not found")
    return found


async def dataset(session: AsyncSession, user: User, dataset_id: int) -> Dataset:
    row = (
        await session.execute(
            select(Dataset, History.owner_id)
            .join(History, History.id == Dataset.history_id)
            .where(Dataset.id == dataset_id)
        )
    ).first()
    if row is None or not may_read(user, row[1]):
        raise NotFound(f"dataset {dataset_id} not found")
    return row[0]


async def collection(session: AsyncSession, user: User, collection_id: int) -> Collection:
    row = (
        await session.execute(
            select(Collection, History.owner_id)
            .join(History, History.id == Collection.history_id)
            .where(Collection.id == collection_id)
        )
    ).first()
    if row is None or not may_read(user, row[1]):
        raise NotFound(f"collection {collection_id} not found")
    return row[0]


async def element(session: AsyncSession, user: User, element_id: int) -> CollectionElement:
    row = (
        await session.execute(
            select(CollectionElement, History.owner_id)
            .join(Collection, Collection.id == CollectionElement.collection_id)
            .join(History, History.id == Collection.history_id)
            .where(CollectionElement.id == element_id)
        )
    ).first()
    if row is None or not may_read(user, row[1]):
        raise NotFound(f"collection element {element_id} not found")
    return row[0]


async def job(session: AsyncSession, user: User, job_id: int) -> Job:
    found = await session.get(Job, job_id)
    if found is None or not may_read(user, found.owner_id):
        raise NotFound(f"job {job_id} not found")
    return found


async def file(session: AsyncSession, user: User, file_id: int) -> StoredFile:
    found = await session.get(StoredFile, file_id)
    if found is None or found.deleted_at is not None or not may_read(user, found.owner_id):
        raise NotFound(f"file {file_id} not found")
    return found
