"""Every limit is a setting, and every exceeded limit is a clear 4xx that leaves
nothing behind: upload size (with or without Content-Length), request body size,
files per export, page size. A gateway of the test's own runs with small limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from support.stack import ADMIN_KEY, ServiceProcess, Stack, create_export, s3_client

LIMITS = {
    "WAYBILL_MAX_UPLOAD_BYTES": "4096",
    "WAYBILL_MAX_REQUEST_BODY_BYTES": "2048",
    "WAYBILL_MAX_FILES_PER_EXPORT": "3",
    "WAYBILL_MAX_PAGE_SIZE": "10",
}


@pytest.fixture(scope="module")
def small_limits(stack: Stack) -> Iterator[ServiceProcess]:
    gateway = stack.infra.service("gateway", **LIMITS).start()
    gateway.wait_ready()
    yield gateway
    gateway.terminate()


@pytest.fixture
def user(stack: Stack, small_limits: ServiceProcess) -> Iterator[httpx.Client]:
    with stack.client() as admin:
        created = admin.post("/api/users", json={"name": f"limits-{uuid.uuid4().hex[:8]}"})
    with httpx.Client(
        base_url=f"http://127.0.0.1:{small_limits.port}",
        headers={"Authorization": f"Bearer {created.json()['api_key']}"},
        timeout=30,
    ) as client:
        yield client


def stored_uploads(stack: Stack) -> int:
    s3 = s3_client(stack.infra)
    return sum(1 for _ in s3.list_objects(stack.infra.bucket, prefix="files/", recursive=True))


def multipart_chunks(boundary: str, payload: bytes, chunk: int = 1024) -> Iterator[bytes]:
    """A multipart upload sent in chunks: no Content-Length, so the limit can only be
    enforced while reading."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    for start in range(0, len(payload), chunk):
        yield payload[start : start + chunk]
    yield f"\r\n--{boundary}--\r\n".encode()


def chunked_upload(user: httpx.Client, payload: bytes) -> httpx.Response:
    boundary = uuid.uuid4().hex
    return user.post(
        "/api/files",
        content=multipart_chunks(boundary, payload),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def test_upload_over_the_limit_is_413_and_stores_nothing(stack: Stack, user: httpx.Client) -> None:
    before = stored_uploads(stack)
    declared = user.post("/api/files", files={"file": ("big.bin", b"x" * 5000)})
    assert declared.status_code == 413
    assert "exceeds the limit of 4096" in declared.json()["detail"]

    chunked = chunked_upload(user, b"y" * 20_000)
    assert chunked.status_code == 413, chunked.text
    # Refused while reading, not after spooling the whole body.
    assert chunked.json()["detail"] == "request body exceeds the limit of 4096 bytes (sent chunked)"

    assert user.get("/api/files").json() == []
    assert stored_uploads(stack) == before


def test_chunked_upload_within_the_limit_is_stored(user: httpx.Client) -> None:
    response = chunked_upload(user, b"z" * 3000)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 3000


def test_json_body_over_the_limit_is_413(user: httpx.Client) -> None:
    body = {"name": "n" * 3000, "file_ids": [1], "export_format": "zip"}
    declared = user.post("/api/data-export/jobs", json=body)
    assert declared.status_code == 413 and "2048" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"n" * 1000
        yield b'", "file_ids": [1], "export_format": "zip"}'

    chunked = user.post(
        "/api/data-export/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["detail"] == "request body exceeds the limit of 2048 bytes (sent chunked)"
    assert user.get("/api/data-export/jobs").headers["X-Total-Count"] == "0"


def test_too_many_files_per_export_is_a_clear_4xx(user: httpx.Client) -> None:
    ids = [
        user.post("/api/files", files={"file": (f"f{i}.txt", b"f")}).json()["id"] for i in range(4)
    ]
    response = create_export(user, "x", ids, "zip")
    assert response.status_code in (400, 422), response.text
    assert "at most 3 per export" in str(response.json()["detail"])
    assert user.get("/api/data-export/jobs").headers["X-Total-Count"] == "0"
    accepted = create_export(user, "x", ids[:3], "zip")
    assert accepted.status_code == 202, accepted.text


def test_page_size_over_the_limit_is_422(user: httpx.Client) -> None:
    for path in ("/api/files", "/api/data-export/jobs", "/api/histories"):
        over = user.get(path, params={"limit": 11})
        assert over.status_code == 422, (path, over.text)
        assert "page size limit of 10" in over.text
        assert user.get(path, params={"limit": 10}).status_code == 200


def test_admin_key_is_not_needed_for_limits(small_limits: ServiceProcess) -> None:
    """The limits hold before authentication: an anonymous oversized body is 413 too,
    and an anonymous normal request is 401."""
    url = f"http://127.0.0.1:{small_limits.port}/api/files"
    assert httpx.post(url, files={"file": ("b", b"x" * 5000)}).status_code == 413
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
