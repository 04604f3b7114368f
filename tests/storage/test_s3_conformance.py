"""What Waybill asks of its S3 server, checked against the local one (scripts/local-s3.sh):
everything shared/storage.py calls, presigned GET and PUT links whose expiry and
signature are enforced, Range, multipart uploads, ListObjectsV2 and DeleteObjects.

bench/s3/run.py runs this file against every candidate server to choose one: with
WAYBILL_TEST_S3_ENDPOINT (and _ACCESS_KEY, _SECRET_KEY) set, it checks that server
instead of starting its own."""

from __future__ import annotations

import io
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from support.stack import S3_ACCESS_KEY, S3_SECRET_KEY

MiB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self, *, secret_key: str | None = None) -> Minio:
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=secret_key or self.secret_key,
            secure=False,
        )


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> Target:
    endpoint = os.environ.get("WAYBILL_TEST_S3_ENDPOINT")
    if endpoint is None:
        endpoint = f"127.0.0.1:{request.getfixturevalue('infra').s3_port}"
    return Target(
        endpoint,
        os.environ.get("WAYBILL_TEST_S3_ACCESS_KEY", S3_ACCESS_KEY),
        os.environ.get("WAYBILL_TEST_S3_SECRET_KEY", S3_SECRET_KEY),
    )


@pytest.fixture(scope="module")
def s3(target: Target) -> Minio:
    return target.client()


@pytest.fixture(scope="module")
def bucket(s3: Minio) -> Iterator[str]:
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    s3.make_bucket(name)
    yield name
    for key in _listed(s3, name, ""):
        s3.remove_object(name, key)


def _listed(s3: Minio, bucket: str, prefix: str) -> list[str]:
    return [o.object_name or "" for o in s3.list_objects(bucket, prefix=prefix, recursive=True)]


def _put(s3: Minio, bucket: str, key: str, data: bytes) -> None:
    s3.put_object(bucket, key, io.BytesIO(data), len(data))


def _tampered(url: str) -> str:
    """The same link with one character of its signature changed."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    signature = query["X-Amz-Signature"][0]
    return url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])


def test_what_storage_py_calls(s3: Minio, bucket: str, tmp_path: Path) -> None:
    assert s3.bucket_exists(bucket)
    assert not s3.bucket_exists(f"absent-{uuid.uuid4().hex[:8]}")
    _put(s3, bucket, "plain/a", b"hello")
    assert s3.stat_object(bucket, "plain/a").size == 5
    with pytest.raises(S3Error) as missing:
        s3.stat_object(bucket, "plain/absent")
    assert missing.value.code in ("NoSuchKey", "NoSuchObject", "NotFound")
    with pytest.raises(S3Error) as missing_get:
        s3.get_object(bucket, "plain/absent")
    assert missing_get.value.code == "NoSuchKey"
    source = tmp_path / "file.bin"
    source.write_bytes(b"from a file" * 1000)
    s3.fput_object(bucket, "plain/file", str(source), content_type="application/zip")
    response = s3.get_object(bucket, "plain/file")
    try:
        assert response.read() == source.read_bytes()
        assert response.headers["content-type"] == "application/zip"
    finally:
        response.close()
        response.release_conn()
    s3.remove_object(bucket, "plain/file")
    assert _listed(s3, bucket, "plain/") == ["plain/a"]


def test_presigned_get_names_the_download_and_is_refused_when_expired_or_tampered(
    s3: Minio, bucket: str
) -> None:
    _put(s3, bucket, "signed/report.zip", b"the archive")
    _put(s3, bucket, "signed/other.zip", b"someone else's")
    url = s3.presigned_get_object(
        bucket,
        "signed/report.zip",
        expires=timedelta(minutes=5),
        response_headers={"response-content-disposition": 'attachment; filename="r.zip"'},
    )
    ok = httpx.get(url)
    assert ok.status_code == 200 and ok.content == b"the archive"
    assert 'filename="r.zip"' in ok.headers["content-disposition"]

    assert httpx.get(_tampered(url)).status_code == 403
    other_key = url.replace("/signed/report.zip?", "/signed/other.zip?")
    assert httpx.get(other_key).status_code == 403

    short = s3.presigned_get_object(bucket, "signed/report.zip", expires=timedelta(seconds=1))
    time.sleep(2.2)
    assert httpx.get(short).status_code == 403


def test_presigned_put_stores_and_is_refused_when_expired_or_tampered(
    s3: Minio, bucket: str
) -> None:
    url = s3.presigned_put_object(bucket, "upload/by-link", expires=timedelta(minutes=5))
    assert httpx.put(_tampered(url), content=b"forged").status_code == 403
    assert httpx.put(url, content=b"sent by link").status_code == 200
    assert s3.get_object(bucket, "upload/by-link").read() == b"sent by link"

    short = s3.presigned_put_object(bucket, "upload/late", expires=timedelta(seconds=1))
    time.sleep(2.2)
    assert httpx.put(short, content=b"too late").status_code == 403
    assert _listed(s3, bucket, "upload/late") == []


def test_range_answers_206_with_the_slice(s3: Minio, bucket: str) -> None:
    _put(s3, bucket, "range/digits", b"0123456789")
    url = s3.presigned_get_object(bucket, "range/digits", expires=timedelta(minutes=5))
    part = httpx.get(url, headers={"Range": "bytes=2-4"})
    assert part.status_code == 206
    assert part.content == b"234"
    assert part.headers["content-range"] == "bytes 2-4/10"


def test_multipart_upload_of_unknown_length(s3: Minio, bucket: str) -> None:
    """shared/storage.py streams uploads with length=-1 and a part size: multipart."""
    data = bytes(range(256)) * (4096 * 12)  # 12 MiB: three parts of 5 MiB
    s3.put_object(bucket, "multi/big", io.BytesIO(data), -1, part_size=5 * MiB)
    assert s3.stat_object(bucket, "multi/big").size == len(data)
    assert s3.get_object(bucket, "multi/big").read() == data


def test_list_objects_v2_by_prefix_in_byte_order_from_a_start_key(s3: Minio, bucket: str) -> None:
    """The storage reconcile walks a prefix in pages from where its last batch ended."""
    keys = ["list/a", "list/b/1", "list/b/2", "list/c", "list-other/x", "listx"]
    for key in keys:
        _put(s3, bucket, key, b"x")
    assert _listed(s3, bucket, "list/") == ["list/a", "list/b/1", "list/b/2", "list/c"]
    after = [
        o.object_name
        for o in s3.list_objects(bucket, prefix="list/", recursive=True, start_after="list/b/1")
    ]
    assert after == ["list/b/2", "list/c"]


def test_delete_objects_removes_many_in_one_request(s3: Minio, bucket: str) -> None:
    keys = [f"many/{i}/part" for i in range(20)]
    for key in keys:
        _put(s3, bucket, key, b"x")
    errors = list(s3.remove_objects(bucket, [DeleteObject(key) for key in keys]))
    assert errors == []
    assert _listed(s3, bucket, "many/") == []


def test_wrong_credentials_are_refused(target: Target, bucket: str) -> None:
    with pytest.raises(S3Error) as refused:
        target.client(secret_key="not-the-secret").bucket_exists(bucket)
    assert refused.value.code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
