"""History exports (short-term or to a long-term S3 location) and re-imports, as
leased tasks."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_export_worker.history_archive import UnsafeArchive, read_archive, write_archive
from waybill_export_worker.history_archive.model import DatasetRecord, WorkflowRecord
from waybill_export_worker.history_snapshot import create_history_from_snapshot, load_history
from waybill_export_worker.settings import ExportWorkerSettings
from waybill_shared.contracts.messages import (
    Artifact,
    HistoryExportRequested,
    HistoryImportRequested,
)
from waybill_shared.db.models import ExportAssociation, History, StoredFile, Task, User
from waybill_shared.db.pg import driver_connection
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import NotFound
from waybill_shared.provenance import access
from waybill_shared.runtime import Runtime
from waybill_shared.storage import Storage
from waybill_shared.tasks.repository import TaskRow, target_taken_by_another
from waybill_shared.tasks.runner import (
    LeasedTask,
    TaskFailed,
    TaskHandlers,
    TaskSpec,
    limited,
    run_leased_task,
)

log = structlog.get_logger(__name__)

CONTENT_TYPES = {
    "rocrate.zip": "application/zip",
    "bag.zip": "application/zip",
    "tar.gz": "application/gzip",
    "tgz": "application/gzip",
    "bag.tgz": "application/gzip",
    "tar": "application/x-tar",
    "bag.tar": "application/x-tar",
    "bco.json": "application/json",
}


def short_term_key(task_uuid: object, fmt: str) -> str:
    return f"history-exports/{task_uuid}/history.{fmt}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


async def run_history_export(
    *,
    runtime: Runtime,
    settings: ExportWorkerSettings,
    request: HistoryExportRequested,
    principal: str | None,
    ack: Callable[[], Awaitable[None]],
    heavy: asyncio.Semaphore,
) -> None:
    async def authorize(task: TaskRow) -> None:
        async with unit_of_work(runtime.sessions) as session:
            user = await _user(session, task.owner_id)
            await access.history(session, user, request.history_id)
            if request.destination == "remote" and not settings.remote_target_allowed(
                request.target_uri
            ):
                raise TaskFailed(
                    f"target_uri {request.target_uri!r} is not under an allowed prefix"
                )
            if request.target_uri is not None and await target_taken_by_another(
                await driver_connection(session),
                target_uri=request.target_uri,
                owner_id=task.owner_id,
            ):
                raise TaskFailed(f"target_uri {request.target_uri!r} holds another owner's export")

    async def work(leased: LeasedTask, _: None) -> None:
        async with runtime.sessions() as session:
            loaded = await load_history(
                session,
                history_id=request.history_id,
                include_files=request.include_files,
                include_hidden=request.include_hidden,
                include_deleted=request.include_deleted,
            )
        leased.check_stop()
        with tempfile.TemporaryDirectory(prefix="waybill-history-", dir=settings.work_dir) as tmp:
            workdir = Path(tmp)
            archive = workdir / f"history.{request.model_store_format}"

            def dataset_file(record: DatasetRecord) -> Path | None:
                if not request.include_files:
                    return None
                if leased.should_stop:
                    raise _Cancelled
                path = workdir / f"dataset-{record.id}"
                _download(runtime.storage, loaded.storage_keys[record.id], path)
                return path

            def workflow_file(record: WorkflowRecord) -> Path | None:
                path = workdir / f"workflow-{record.id}.ga"
                _download(runtime.storage, loaded.workflow_keys[record.id], path)
                return path

            try:
                summary = await asyncio.to_thread(
                    write_archive,
                    loaded.snapshot,
                    fmt=request.model_store_format,
                    target=archive,
                    dataset_file=dataset_file,
                    # one dataset file on local disk at a time
                    after_file=lambda _record, path: path.unlink(missing_ok=True),
                    workflow_file=workflow_file,
                )
            except _Cancelled:
                leased.check_stop()
                raise
            leased.check_stop()
            content_type = CONTENT_TYPES[request.model_store_format]
            if request.destination == "remote":
                assert request.target_uri is not None
                bucket, key = split_s3_uri(request.target_uri)
                stored = await runtime.storage.put_file(
                    key, archive, content_type=content_type, bucket=bucket
                )
                uri = request.target_uri
                artifact = None
            else:
                key = short_term_key(request.task_id, request.model_store_format)
                stored = await runtime.storage.put_file(key, archive, content_type=content_type)
                uri = f"s3://{runtime.storage.bucket}/{key}"
                name = f"history-{request.history_id}.{request.model_store_format}"
                artifact = Artifact(
                    key=key,
                    size=stored.size,
                    sha256=stored.sha256,
                    content_type=content_type,
                    filename=name,
                )
        leased.check_stop()
        await leased.emitter.emit(
            "completed",
            progress=100.0,
            artifact=artifact,
            result={
                "uri": uri,
                "size": stored.size,
                "sha256": stored.sha256,
                "datasets": len(loaded.snapshot.datasets),
                "jobs": len(loaded.snapshot.jobs),
                "files": summary.files,
            },
        )

    async def remove_partial() -> None:
        await runtime.storage.remove_prefix(f"history-exports/{request.task_id}/")

    await run_leased_task(
        runtime=runtime,
        spec=TaskSpec(
            task_uuid=request.task_id,
            kind="history_export",
            owner_id=request.owner_id,
            principal=principal,
            request=request.model_dump(mode="json"),
            ttl_hours=settings.short_term_export_ttl_hours
            if request.destination == "short_term"
            else 0,
        ),
        ack=ack,
        handlers=TaskHandlers(authorize, limited(heavy, work), on_stopped=remove_partial),
    )


class _Cancelled(Exception):
    pass


def _download(storage: Storage, key: str, path: Path) -> None:
    with path.open("wb") as out:
        for chunk in storage.iter_object(key):
            out.write(chunk)


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def run_history_import(
    *,
    runtime: Runtime,
    settings: ExportWorkerSettings,
    request: HistoryImportRequested,
    principal: str | None,
    ack: Callable[[], Awaitable[None]],
    heavy: asyncio.Semaphore,
) -> None:
    async def authorize(task: TaskRow) -> None:
        async with runtime.sessions() as session:
            await _user(session, task.owner_id)
            await _readable_export(session, task.owner_id, request.store_content_uri)

    async def work(leased: LeasedTask, _: None) -> None:
        # A re-attempt after the import committed only reports it (never a second history).
        async with runtime.sessions() as session:
            task = await session.get(Task, leased.task.id)
            done = (task.result or {}).get("history_id") if task else None
        if done is None:
            done = await _import(runtime, settings, request, leased)
        await leased.emitter.emit("completed", progress=100.0, result={"history_id": done})

    await run_leased_task(
        runtime=runtime,
        spec=TaskSpec(
            task_uuid=request.task_id,
            kind="history_import",
            owner_id=request.owner_id,
            principal=principal,
            request=request.model_dump(mode="json"),
            ttl_hours=0,
        ),
        ack=ack,
        handlers=TaskHandlers(authorize, limited(heavy, work)),
    )


async def _readable_export(session: AsyncSession, owner_id: int, uri: str) -> None:
    """Direct publishers get the gateway's rule: only archives of exports the user may
    read are imported."""
    user = await _user(session, owner_id)
    found = (
        await session.execute(
            select(ExportAssociation.owner_id).where(
                ExportAssociation.result_data["uri"].astext == uri,
                ExportAssociation.status == "completed",
            )
        )
    ).first()
    if found is None or not access.may_read(user, found[0]):
        raise NotFound(f"no completed export found for {uri!r}")


async def _import(
    runtime: Runtime,
    settings: ExportWorkerSettings,
    request: HistoryImportRequested,
    leased: LeasedTask,
) -> int:
    bucket, key = split_s3_uri(request.store_content_uri)
    with tempfile.TemporaryDirectory(prefix="waybill-import-", dir=settings.work_dir) as tmp:
        workdir = Path(tmp)
        archive = workdir / "archive"

        def fetch() -> None:
            response = runtime.storage.client.get_object(bucket, key)
            try:
                with archive.open("wb") as out:
                    for chunk in response.stream(1024 * 1024):
                        out.write(chunk)
            finally:
                response.close()
                response.release_conn()

        await asyncio.to_thread(fetch)
        leased.check_stop()
        try:
            opened = await asyncio.to_thread(read_archive, archive)
        except UnsafeArchive as exc:
            raise TaskFailed(f"the archive was refused: {exc}") from exc
        with opened:
            snapshot = opened.snapshot
            files: dict[int, StoredFile] = {}
            for record in snapshot.datasets:
                leased.check_stop()
                path = workdir / f"dataset-{record.id}"
                if not await asyncio.to_thread(opened.extract_dataset, record.id, path):
                    path.write_bytes(b"")  # exported without files: an empty placeholder
                # Deterministic keys: a re-attempt overwrites instead of leaving orphans.
                storage_key = f"files/import-{request.task_id}-{record.id}"
                stored = await runtime.storage.put_file(storage_key, path)
                path.unlink()
                files[record.id] = StoredFile(
                    owner_id=request.owner_id,
                    filename=record.name,
                    size=stored.size,
                    sha256=stored.sha256,
                    format=record.file.format,
                    metadata_=dict(record.file.metadata),
                    storage_key=storage_key,
                )
        async with unit_of_work(runtime.sessions) as session:
            session.add_all(files.values())
            await session.flush()
            history: History = await create_history_from_snapshot(
                session, snapshot=snapshot, owner_id=request.owner_id, files=files
            )
            # Recorded with the import, in the same transaction: see work() above.
            await session.execute(
                update(Task)
                .where(Task.id == leased.task.id)
                .values(result={"history_id": history.id})
            )
            return history.id
