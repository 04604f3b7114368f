"""S3 storage on the minio client. The SDK is synchronous: `Storage.blocking` has the
calls as they are, for code already running in a worker thread (an export does its
whole S3 and file work in one thread hop); `Storage`'s async methods run one call each
in a thread (`asyncio.to_thread`), so they never block the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from minio import Minio
from minio.error import S3Error

from waybill_shared.settings import WaybillSettings

PART_SIZE = 16 * 1024 * 1024
CHUNK = 1024 * 1024
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class _HashingReader:
    """Wraps a file object: counts and hashes what the uploader reads through it."""

    def __init__(self, raw: IO[bytes], limit: int | None) -> None:
        self.raw = raw
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(self.limit)
        self.digest.update(data)
        return data


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


class ObjectMissing(Exception):
    """The object is not in storage (its GET answered NoSuchKey)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} is not in storage")
        self.key = key


@dataclass(frozen=True)
class OpenedObject:
    """A GET whose answer said the object is there: its size (from the answer's
    Content-Length) and its bytes, to read once."""

    size: int | None
    chunks: Iterator[bytes]


class BlockingStorage:
    """The S3 calls, synchronous: call them from a worker thread."""

    def __init__(self, settings: WaybillSettings) -> None:
        self.bucket = settings.s3_bucket
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        # Download links are signed for the endpoint clients reach, which may differ
        # from the one the services use inside the cluster.
        self.signer = (
            Minio(
                settings.s3_public_endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
                secure=settings.s3_secure,
                region=settings.s3_region,
            )
            if settings.s3_public_endpoint
            else self.client
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put_stream(
        self,
        key: str,
        stream: IO[bytes],
        *,
        limit: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        reader = _HashingReader(stream, limit)
        self.client.put_object(
            self.bucket,
            key,
            cast(BinaryIO, reader),
            length=-1,
            part_size=PART_SIZE,
            content_type=content_type,
        )
        return StoredObject(key, reader.size, reader.digest.hexdigest())

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str = "application/octet-stream",
        bucket: str | None = None,
    ) -> StoredObject:
        """Upload a local file (to another bucket of the same server when given)."""
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        target = bucket or self.bucket
        if bucket is not None and not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)
        self.client.fput_object(
            target, key, str(path), content_type=content_type, part_size=PART_SIZE
        )
        return StoredObject(key, path.stat().st_size, digest.hexdigest())

    def get_bytes(self, key: str) -> bytes:
        response = self._get(key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, path: Path, on_chunk: Any = None) -> int:
        response = self._get(key)
        size = 0
        try:
            with path.open("wb") as out:
                for chunk in response.stream(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    if on_chunk is not None:
                        on_chunk(size)
        finally:
            response.close()
            response.release_conn()
        return size

    def iter_object(self, key: str) -> Iterator[bytes]:
        """Stream an object's bytes (sync; use from a thread or a sync generator)."""
        response = self._get(key)
        try:
            yield from response.stream(CHUNK)
        finally:
            response.close()
            response.release_conn()

    def remove_prefix(self, prefix: str) -> int:
        count = 0
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if obj.object_name is not None:
                self.client.remove_object(self.bucket, obj.object_name)
                count += 1
        return count

    def _get(self, key: str) -> Any:
        """A GET whose answer was an object; ObjectMissing when it was NoSuchKey."""
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in MISSING_CODES:
                raise ObjectMissing(key) from exc
            raise

    def open(self, key: str) -> OpenedObject:
        response = self._get(key)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

        length = response.headers.get("content-length")
        return OpenedObject(int(length) if length is not None else None, chunks())

    def present(self, keys: list[str], *, prefix: str, start_after: str | None = None) -> set[str]:
        """Which of `keys` are in storage. The keys are sorted (bytewise), all under
        `prefix` and after `start_after`: one ListObjectsV2 walk over their range (a
        page per thousand objects), instead of a HEAD per key."""
        found: set[str] = set()
        if not keys:
            return found
        wanted, last = set(keys), keys[-1]
        listing = self.client.list_objects(
            self.bucket, prefix=prefix, recursive=True, start_after=start_after
        )
        for obj in listing:
            name = obj.object_name
            if name is None:
                continue
            if name > last:  # listed in UTF-8 byte order, which str order matches
                break
            if name in wanted:
                found.add(name)
        return found

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in MISSING_CODES:
                return False
            raise
        return True


class Storage:
    """The same calls, awaitable: each runs in a worker thread."""

    def __init__(self, settings: WaybillSettings) -> None:
        self.blocking = BlockingStorage(settings)
        self.bucket = self.blocking.bucket
        self.client = self.blocking.client

    def iter_object(self, key: str) -> Iterator[bytes]:
        return self.blocking.iter_object(key)

    async def ensure_bucket(self) -> None:
        await asyncio.to_thread(self.blocking.ensure_bucket)

    async def put_stream(
        self,
        key: str,
        stream: IO[bytes],
        *,
        limit: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        return await asyncio.to_thread(
            self.blocking.put_stream, key, stream, limit=limit, content_type=content_type
        )

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str = "application/octet-stream",
        bucket: str | None = None,
    ) -> StoredObject:
        """Upload a local file (to another bucket of the same server when given)."""
        return await asyncio.to_thread(
            self.blocking.put_file, key, path, content_type=content_type, bucket=bucket
        )

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/json"
    ) -> StoredObject:
        return await asyncio.to_thread(
            self.blocking.put_bytes, key, data, content_type=content_type
        )

    async def get_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self.blocking.get_bytes, key)

    async def download(self, key: str, path: Path, on_chunk: Any = None) -> int:
        return await asyncio.to_thread(self.blocking.download, key, path, on_chunk)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.blocking.exists, key)

    async def open(self, key: str) -> OpenedObject:
        """Start a GET and wait for its answer, so that a missing object raises
        ObjectMissing before anything is sent on (a response is never begun and then
        cut short); then read `chunks` (sync: from a thread or a StreamingResponse)."""
        return await asyncio.to_thread(self.blocking.open, key)

    async def present(
        self, keys: list[str], *, prefix: str, start_after: str | None = None
    ) -> set[str]:
        """BlockingStorage.present, in a worker thread."""
        if not keys:
            return set()
        return await asyncio.to_thread(
            self.blocking.present, keys, prefix=prefix, start_after=start_after
        )

    async def remove(self, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def remove_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self.blocking.remove_prefix, prefix)

    def presigned_url(self, key: str, *, expires: timedelta, filename: str | None = None) -> str:
        """A signed GET link. Signing is local computation (the region is configured,
        so the client asks the server nothing): no thread hop."""
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"response-content-disposition": f'attachment; filename="{filename}"'}
            if filename
            else None
        )
        return self.blocking.signer.presigned_get_object(
            self.bucket, key, expires=expires, response_headers=headers
        )

    async def ping(self) -> bool:
        return await asyncio.to_thread(self.client.bucket_exists, self.bucket)
