"""History exports (Galaxy's task-based exports), tracked as export associations, reused
while valid; re-import; the generic task API."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.repository import history_exports as repository
from waybill_gateway.schemas import ExportRecord, FromStoreRequest, HistoryExportOptions
from waybill_gateway.services.data_exports import DONE, api_progress
from waybill_gateway.services.streams import Snapshot
from waybill_shared import outbox
from waybill_shared.clock import utcnow
from waybill_shared.contracts.messages import HistoryExportRequested, HistoryImportRequested
from waybill_shared.db.models import ExportAssociation, History, Task, User
from waybill_shared.db.pg import Pool, driver_connection, to_json
from waybill_shared.errors import Conflict, Invalid, NotFound
from waybill_shared.messaging.topology import Topology
from waybill_shared.provenance import access
from waybill_shared.settings import WaybillSettings
from waybill_shared.tasks.repository import (
    TaskRow,
    get_task_and_last_event,
    register_task,
    target_taken_by_another,
)
from waybill_shared.tasks.state import galaxy_task_state


def params_hash(options: HistoryExportOptions, destination: str, target_uri: str | None) -> str:
    payload = {
        **options.model_dump(mode="json"),
        "destination": destination,
        "target_uri": target_uri,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise Invalid(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/") or ".." in key.split("/"):
        raise Invalid(f"{uri!r} must name an object: s3://bucket/path/to/archive")
    return bucket, key


async def _reusable(
    session: AsyncSession, history: History, digest: str
) -> ExportAssociation | None:
    """An earlier short-term export of the same, unchanged history with the same
    options that is not failed and not expired."""
    now = utcnow()
    found = await repository.latest_short_term_export(session, history, digest)
    if found is None or (found.expires_at is not None and found.expires_at <= now):
        return None
    return found


async def request_export(
    session: AsyncSession,
    *,
    user: User,
    history_id: int,
    options: HistoryExportOptions,
    destination: str,
    target_uri: str | None,
    settings: WaybillSettings,
    topology: Topology,
) -> tuple[ExportAssociation, Task, outbox.OutboxEntry | None]:
    """Returns (association, task, the command to hand to the relay once committed). A
    short-term request is answered by a reusable earlier export when there is one;
    nothing is generated then (no command)."""
    history = await access.history(session, user, history_id, lock=True)
    if destination == "remote":
        assert target_uri is not None
        parse_s3_uri(target_uri)
        if not settings.remote_target_allowed(target_uri):
            allowed = ", ".join(settings.allowed_remote_prefixes())
            raise Invalid(f"target_uri must be under an allowed prefix: {allowed}")
        if await target_taken_by_another(
            await driver_connection(session), target_uri=target_uri, owner_id=history.owner_id
        ):
            raise Conflict(f"target_uri {target_uri!r} is taken: choose another location")
    digest = params_hash(options, destination, target_uri)
    if destination == "short_term":
        reused = await _reusable(session, history, digest)
        if reused is not None:
            task = await session.get(Task, reused.task_id)
            assert task is not None
            return reused, task, None
    command = HistoryExportRequested(
        task_id=uuid.uuid4(),
        owner_id=history.owner_id,
        history_id=history.id,
        model_store_format=options.model_store_format,
        include_files=options.include_files,
        include_hidden=options.include_hidden,
        include_deleted=options.include_deleted,
        destination=destination,
        target_uri=target_uri,
    )
    registered = await register_task(
        await driver_connection(session),
        task_uuid=command.task_id,
        kind="history_export",
        owner_id=history.owner_id,
        request=command.model_dump(mode="json"),
        ttl_hours=settings.short_term_export_ttl_hours if destination == "short_term" else 0,
        command=outbox.prepare(command, exchange=topology.commands_exchange),
    )
    task = await session.get(Task, registered.task.id)
    assert task is not None
    association = ExportAssociation(
        task_id=task.id,
        object_type="history",
        object_id=history.id,
        owner_id=history.owner_id,
        destination=destination,
        params_hash=digest,
        content_version=history.content_version,
        status="pending",
        request_data={
            "object_id": history.id,
            "object_type": "history",
            "user_id": user.id,
            "payload": {**options.model_dump(mode="json"), "target_uri": target_uri},
        },
        result_data={},
    )
    session.add(association)
    await session.flush()
    return association, task, registered.command


async def list_exports(
    session: AsyncSession, *, user: User, history_id: int, limit: int, offset: int
) -> tuple[list[ExportRecord], int]:
    history = await access.history(session, user, history_id)
    rows, total = await repository.exports_page(
        session, history_id=history.id, limit=limit, offset=offset
    )
    now = utcnow()
    return [
        ExportRecord(
            id=assoc.id,
            ready=assoc.status == "completed"
            and (assoc.expires_at is None or assoc.expires_at > now),
            preparing=assoc.status in ("pending", "processing"),
            up_to_date=assoc.content_version == history.content_version,
            has_failed=assoc.status in ("failed", "cancelled"),
            expired=assoc.status == "expired"
            or (assoc.expires_at is not None and assoc.expires_at <= now),
            status=assoc.status,
            task_uuid=task.uuid,
            create_time=assoc.created_at,
            expires_at=assoc.expires_at,
            destination=assoc.destination,
            export_metadata={
                "request_data": assoc.request_data,
                "result_data": assoc.result_data or {},
            },
        )
        for assoc, task in rows
    ], total


async def short_term_task(session: AsyncSession, *, user: User, storage_request_id: str) -> Task:
    task = await repository.task_by_uuid(session, storage_request_id, kind="history_export")
    if task is None or not access.may_read(user, task.owner_id):
        raise NotFound(f"short-term storage request {storage_request_id} not found")
    return task


async def request_import(
    session: AsyncSession, *, user: User, body: FromStoreRequest, topology: Topology
) -> tuple[Task, outbox.OutboxEntry | None]:
    """Galaxy's CreateHistoryFromStore. Only archives this user exported (by uri,
    association id or task id) can be imported: nobody reads another user's export by
    guessing its key."""
    if body.store_dict is not None:
        raise Invalid(
            "store_dict (an inline model store) is not supported: export the history "
            "and give the export's store_content_uri"
        )
    if body.store_content_uri is None:
        raise Invalid("give store_content_uri: an export's uri, its record id or its task id")
    source, fmt = await _export_source(session, user=user, ref=body.store_content_uri)
    if fmt == "bco.json":
        raise Invalid(
            f"{body.store_content_uri!r} is a bco.json export, a BioCompute Object: it "
            "describes the history and cannot be re-imported; export it as rocrate.zip, "
            "tar.gz, tgz, tar, bag.zip, bag.tar or bag.tgz"
        )
    stated = body.model_store_format
    if stated is not None and SAME_ARCHIVE.get(stated, stated) != SAME_ARCHIVE.get(fmt, fmt):
        raise Invalid(f"model_store_format is {stated!r}, but that export is a {fmt!r} archive")
    command = HistoryImportRequested(
        task_id=uuid.uuid4(), owner_id=user.id, store_content_uri=source
    )
    registered = await register_task(
        await driver_connection(session),
        task_uuid=command.task_id,
        kind="history_import",
        owner_id=user.id,
        request=command.model_dump(mode="json"),
        ttl_hours=0,
        command=outbox.prepare(command, exchange=topology.commands_exchange),
    )
    task = await session.get(Task, registered.task.id)
    assert task is not None
    return task, registered.command


SAME_ARCHIVE = {"tgz": "tar.gz"}  # two names for one format


async def _export_source(session: AsyncSession, *, user: User, ref: str) -> tuple[str, str]:
    """The archive's uri and format."""
    found = await repository.completed_export(session, ref)
    if found is None or not access.may_read(user, found.owner_id):
        raise NotFound(f"no completed export found for {ref!r}")
    uri = (found.result_data or {}).get("uri")
    if not uri:
        raise NotFound(f"export {ref!r} has no archive")
    payload = (found.request_data or {}).get("payload") or {}
    return str(uri), str(payload.get("model_store_format", "rocrate.zip"))


async def get_task(session: AsyncSession, *, user: User, task_id: str) -> Task:
    try:
        uuid.UUID(task_id)
    except ValueError as exc:
        raise NotFound(f"task {task_id} not found") from exc
    task = await repository.task_by_uuid(session, task_id)
    if task is None or not access.may_read(user, task.owner_id):
        raise NotFound(f"task {task_id} not found")
    return task


def task_state(task: Task | TaskRow) -> str:
    return galaxy_task_state(task.status)


def task_result(task: Task | TaskRow) -> dict[str, Any]:
    result = {k: v for k, v in (task.result or {}).items() if k not in ("artifact", "manifest")}
    return {
        "state": task_state(task),
        "status": task.status,
        "progress": api_progress(task.progress, done=task.status in DONE),
        "error": task.error_message,
        **result,
    }


async def task_snapshot(
    db: Pool, task_id: int | None = None, *, user: User, task_uuid: str | None = None
) -> Snapshot | None:
    """The task as its GET .../result answers it, for its event stream (by id, or by
    uuid); None when it is not there for this user."""
    if task_uuid is not None:
        try:
            uuid.UUID(task_uuid)
        except ValueError:
            return None
    async with db.acquire() as conn:
        found = await get_task_and_last_event(conn, task_id=task_id, task_uuid=task_uuid)
    if found is None or not access.may_read(user, found[0].owner_id):
        return None
    task, last_event_id = found
    return Snapshot(task.id, last_event_id, task.status, to_json(task_result(task)))
