"""Exporting a 1,000-dataset, 1,000-job history runs a bounded number of SQL queries
(no N+1, Galaxy #23038): the snapshot loader against the real database."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from support.stack import Infra
from waybill_export_worker.history_snapshot import load_history
from waybill_shared.db.models import Dataset, History, Job, JobInput, JobOutput, StoredFile, User

N = 1000


async def _populate(session: AsyncSession) -> int:
    user_id = (
        await session.execute(insert(User).values(name="n-plus-one").returning(User.id))
    ).scalar_one()
    history_id = (
        await session.execute(
            insert(History).values(owner_id=user_id, name="big").returning(History.id)
        )
    ).scalar_one()
    file_id = (
        await session.execute(
            insert(StoredFile)
            .values(
                owner_id=user_id,
                filename="f",
                size=1,
                sha256="0" * 64,
                format="text",
                metadata_={},
                storage_key="files/x",
            )
            .returning(StoredFile.id)
        )
    ).scalar_one()
    job_ids = (
        (
            await session.execute(
                insert(Job).returning(Job.id),
                [
                    {
                        "history_id": history_id,
                        "owner_id": user_id,
                        "tool_id": f"tool{i % 7}",
                        "parameters": {"i": i},
                    }
                    for i in range(N)
                ],
            )
        )
        .scalars()
        .all()
    )
    dataset_ids = (
        (
            await session.execute(
                insert(Dataset).returning(Dataset.id),
                [
                    {
                        "history_id": history_id,
                        "hid": i + 1,
                        "name": f"d{i}",
                        "file_id": file_id,
                        "creating_job_id": job_ids[i - 1] if i else None,
                    }
                    for i in range(N)
                ],
            )
        )
        .scalars()
        .all()
    )
    await session.execute(
        insert(JobInput),
        [
            {"job_id": job_ids[i], "name": "input", "src": "hda", "ref_id": dataset_ids[i]}
            for i in range(N)
        ],
    )
    await session.execute(
        insert(JobOutput),
        [
            {"job_id": job_ids[i - 1], "name": "out", "src": "hda", "ref_id": dataset_ids[i]}
            for i in range(1, N)
        ],
    )
    await session.commit()
    return history_id


def test_snapshot_of_a_large_history_uses_a_bounded_number_of_queries(infra: Infra) -> None:
    async def run() -> tuple[int, float, int, int]:
        engine = create_async_engine(infra.database_url)
        statements: list[str] = []
        try:
            async with AsyncSession(engine) as session:
                history_id = await _populate(session)
            event.listen(
                engine.sync_engine,
                "before_cursor_execute",
                lambda *args: statements.append(args[2]),
            )
            started = time.perf_counter()
            async with AsyncSession(engine) as session:
                loaded = await load_history(
                    session,
                    history_id=history_id,
                    include_files=True,
                    include_hidden=False,
                    include_deleted=False,
                )
            elapsed = time.perf_counter() - started
            return (
                len(statements),
                elapsed,
                len(loaded.snapshot.datasets),
                len(loaded.snapshot.jobs),
            )
        finally:
            await engine.dispose()

    queries, elapsed, datasets, jobs = asyncio.run(run())
    print(
        f"snapshot of {datasets} datasets and {jobs} jobs: {queries} queries, {elapsed * 1000:.0f} ms"
    )
    assert datasets == N and jobs == N
    assert queries <= 10
