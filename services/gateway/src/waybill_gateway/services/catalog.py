"""Users, projects and files."""

from __future__ import annotations

import io
import json
import uuid
from typing import IO, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waybill_gateway.quotas import Quotas
from waybill_gateway.repository import catalog as repository
from waybill_gateway.repository.accounts import stored_bytes
from waybill_gateway.services import accounts
from waybill_gateway.services.errors import Conflict, Gone, Invalid, NotFound
from waybill_shared.clock import utcnow
from waybill_shared.db.models import Project, StoredFile, User
from waybill_shared.formats import detect_format
from waybill_shared.security import hash_api_key, new_api_key
from waybill_shared.storage import ObjectMissing, OpenedObject, Storage

SNIFF_BYTES = 64 * 1024


async def ensure_admin(session: AsyncSession, *, api_key: str) -> None:
    """Bootstrap the configured admin key (idempotent; rotates the key if changed)."""
    admin = await repository.user_named(session, "admin")
    if admin is None:
        admin = User(name="admin", is_admin=True)
        session.add(admin)
        await session.flush()
    admin.is_admin = True
    configured = await repository.key_named(session, user_id=admin.id, name=accounts.ADMIN_KEY_NAME)
    if configured is None:
        session.add(accounts.key_record(admin.id, accounts.ADMIN_KEY_NAME, api_key))
    elif configured.key_hash != hash_api_key(api_key):
        fresh = accounts.key_record(admin.id, accounts.ADMIN_KEY_NAME, api_key)
        configured.key_hash, configured.prefix = fresh.key_hash, fresh.prefix


async def create_user(session: AsyncSession, *, name: str, is_admin: bool) -> tuple[User, str]:
    """A user and its first key (named "default")."""
    key = new_api_key()
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user named {name!r} already exists") from exc
    session.add(accounts.key_record(user.id, "default", key))
    await session.flush()
    return user, key


def visible_to(user: User, owner_id: int) -> bool:
    return user.is_admin or owner_id == user.id


async def create_project(
    session: AsyncSession, *, owner: User, name: str, description: str | None
) -> Project:
    project = Project(owner_id=owner.id, name=name, description=description)
    session.add(project)
    await session.flush()
    return project


async def list_projects(
    session: AsyncSession, *, owner: User, limit: int, offset: int
) -> tuple[list[Project], int]:
    owner_id = None if owner.is_admin else owner.id
    return await repository.projects_page(session, owner_id=owner_id, limit=limit, offset=offset)


async def get_project(session: AsyncSession, *, user: User, project_id: int) -> Project:
    project = await session.get(Project, project_id)
    if project is None or not visible_to(user, project.owner_id):
        raise NotFound(f"project {project_id} not found")
    return project


def parse_metadata(raw: str | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise Invalid(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise Invalid("metadata must be a JSON object")
    return value


async def upload_file(
    session: AsyncSession,
    storage: Storage,
    *,
    owner: User,
    filename: str,
    stream: IO[bytes],
    project_id: int | None,
    metadata: dict[str, Any],
    max_bytes: int,
    quotas: Quotas,
) -> StoredFile:
    """Stream an upload to S3 (hashing on the way) and record it in the catalog, if it
    fits the owner's stored-bytes quota (its size is known: the body is spooled)."""
    if project_id is not None:
        await get_project(session, user=owner, project_id=project_id)
    if quotas.stored_bytes:
        size = stream.seek(0, io.SEEK_END)
        in_store = await stored_bytes(session, owner.id)
        quotas.check_stored(in_store, adding=size)
        stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    key = f"files/{uuid.uuid4()}"
    stored = await storage.put_stream(key, stream, limit=max_bytes)
    record = StoredFile(
        owner_id=owner.id,
        project_id=project_id,
        filename=filename,
        size=stored.size,
        sha256=stored.sha256,
        format=detect_format(filename, head),
        metadata_=metadata,
        storage_key=key,
    )
    session.add(record)
    await session.flush()
    return record


async def list_files(
    session: AsyncSession, *, user: User, project_id: int | None, limit: int, offset: int
) -> tuple[list[StoredFile], int]:
    owner_id = None if user.is_admin else user.id
    return await repository.files_page(
        session, owner_id=owner_id, project_id=project_id, limit=limit, offset=offset
    )


async def get_file(session: AsyncSession, *, user: User, file_id: int) -> StoredFile:
    record = await session.get(StoredFile, file_id)
    if record is None or record.deleted_at is not None or not visible_to(user, record.owner_id):
        raise NotFound(f"file {file_id} not found")
    return record


async def open_content(storage: Storage, record: StoredFile) -> OpenedObject:
    """The file's bytes, once storage has answered that it has them: a file whose bytes
    are gone is a clear 410, never a response that starts and is then cut short."""
    gone = Gone(f"the bytes of file {record.id} are no longer in storage")
    if record.missing_at is not None:
        raise gone
    try:
        return await storage.open(record.storage_key)
    except ObjectMissing as exc:
        raise gone from exc


async def delete_file(session: AsyncSession, storage: Storage, *, user: User, file_id: int) -> None:
    """Remove a file from the catalog. Its bytes stay while a history dataset still
    points at them (datasets are provenance and outlive the upload)."""
    record = await get_file(session, user=user, file_id=file_id)
    record.deleted_at = utcnow()
    if not await repository.file_in_a_dataset(session, file_id):
        await storage.remove(record.storage_key)


async def readable_file_ids(
    session: AsyncSession, *, user: User, file_ids: list[int]
) -> dict[int, str]:
    """The files' names by id; NotFound names the first file the user may not read."""
    if not file_ids:
        return {}
    rows = await repository.file_owners_and_names(session, file_ids)
    owners = {row.id: row.owner_id for row in rows}
    for file_id in file_ids:
        if file_id not in owners or not visible_to(user, owners[file_id]):
            raise NotFound(f"file {file_id} not found")
    return {row.id: row.filename for row in rows}
