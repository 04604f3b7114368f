"""Users, projects and files."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import ApiKey, Dataset, Project, StoredFile, User
from waybill_shared.db.queries import among, fetch_page


async def user_named(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def key_named(session: AsyncSession, *, user_id: int, name: str) -> ApiKey | None:
    return (
        await session.execute(select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.name == name))
    ).scalar_one_or_none()


async def projects_page(
    session: AsyncSession, *, owner_id: int | None, limit: int, offset: int
) -> tuple[list[Project], int]:
    """Projects by id; `owner_id` None: everyone's."""
    stmt = select(Project).order_by(Project.id)
    if owner_id is not None:
        stmt = stmt.where(Project.owner_id == owner_id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def files_page(
    session: AsyncSession,
    *,
    owner_id: int | None,
    project_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[StoredFile], int]:
    """Files not deleted, by id; `owner_id` None: everyone's."""
    stmt = select(StoredFile).where(StoredFile.deleted_at.is_(None)).order_by(StoredFile.id)
    if owner_id is not None:
        stmt = stmt.where(StoredFile.owner_id == owner_id)
    if project_id is not None:
        stmt = stmt.where(StoredFile.project_id == project_id)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


async def file_in_a_dataset(session: AsyncSession, file_id: int) -> bool:
    """Whether a history dataset points at the file's bytes."""
    found = (
        await session.execute(select(Dataset.id).where(Dataset.file_id == file_id).limit(1))
    ).first()
    return found is not None


async def file_owners_and_names(session: AsyncSession, file_ids: list[int]) -> list[Any]:
    """Rows of (id, owner_id, filename) of the files not deleted among `file_ids`."""
    return list(
        (
            await session.execute(
                select(StoredFile.id, StoredFile.owner_id, StoredFile.filename).where(
                    among(StoredFile.id, file_ids), StoredFile.deleted_at.is_(None)
                )
            )
        ).all()
    )
