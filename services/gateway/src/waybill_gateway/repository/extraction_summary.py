"""What the extraction summary reads of a history: its contents, the elements of its
collections, the jobs that made them (or their originals), the mapped runs' sizes."""

from __future__ import annotations

from collections.abc import Collection as Ids
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_shared.db.models import Collection, CollectionElement, Dataset, Job, JobOutput
from waybill_shared.db.queries import among

Item = TypeVar("Item", Dataset, Collection)


async def history_items(session: AsyncSession, model: type[Item], history_id: int) -> list[Item]:
    return list(
        (await session.execute(select(model).where(model.history_id == history_id))).scalars()
    )


async def element_dataset_ids(session: AsyncSession, history_id: int) -> set[int | None]:
    """The datasets that are elements of a collection of the history."""
    return set(
        (
            await session.execute(
                select(CollectionElement.dataset_id)
                .join(Collection, Collection.id == CollectionElement.collection_id)
                .where(
                    Collection.history_id == history_id, CollectionElement.dataset_id.is_not(None)
                )
            )
        ).scalars()
    )


async def by_ids(session: AsyncSession, model: type[Item], ids: Ids[int]) -> list[Item]:
    return list((await session.execute(select(model).where(among(model.id, ids)))).scalars())


async def jobs_by_id(session: AsyncSession, ids: Ids[int]) -> dict[int, Job]:
    return {
        j.id: j for j in (await session.execute(select(Job).where(among(Job.id, ids)))).scalars()
    }


async def mapped_run_sizes(session: AsyncSession, groups: Ids[int]) -> dict[int, tuple[int, int]]:
    """Mapped run id -> (its first job's id, how many jobs it has)."""
    return {
        group: (first, count)
        for group, first, count in (
            await session.execute(
                select(Job.implicit_collection_jobs_id, func.min(Job.id), func.count())
                .where(among(Job.implicit_collection_jobs_id, groups))
                .group_by(Job.implicit_collection_jobs_id)
            )
        ).all()
    }


async def output_names(session: AsyncSession, job_ids: Ids[int]) -> dict[tuple[int, str, int], str]:
    """(job id, src, ref id) -> the name of that output of that job."""
    return {
        (o.job_id, o.src, o.ref_id): o.name
        for o in (
            await session.execute(select(JobOutput).where(among(JobOutput.job_id, job_ids)))
        ).scalars()
    }
