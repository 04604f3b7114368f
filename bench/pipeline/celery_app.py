"""The Celery set-ups a team would otherwise use, with Celery's defaults.

(a) `noop`: a no-op task with the rpc result backend: the messaging floor.
(b) `zip_export`: what one small Waybill export does (fetch the object from S3, zip
    it, upload the zip), with the results kept in PostgreSQL (the database backend).

The broker, the backend and the S3 server come from the environment, so the worker
and the benchmark's client agree: BENCH_BROKER, BENCH_BACKEND, BENCH_S3_ENDPOINT,
BENCH_S3_BUCKET.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from typing import Any

from celery import Celery
from minio import Minio

_s3: Minio | None = None


def s3() -> Minio:
    global _s3
    if _s3 is None:
        _s3 = Minio(
            os.environ.get("BENCH_S3_ENDPOINT", "127.0.0.1:9000"),
            access_key="waybill",
            secret_key="waybill-secret",
            secure=False,
        )
    return _s3


def noop() -> None:
    return None


def zip_export(source_key: str, target_key: str) -> dict[str, Any]:
    bucket = os.environ["BENCH_S3_BUCKET"]
    response = s3().get_object(bucket, source_key)
    try:
        data = response.read()
    finally:
        response.close()
        response.release_conn()
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(source_key.rsplit("/", 1)[-1], data)
    body = packed.getvalue()
    s3().put_object(bucket, target_key, io.BytesIO(body), len(body), content_type="application/zip")
    return {"key": target_key, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def make_app(broker: str, backend: str) -> Celery:
    """An app of its own per set-up: Celery caches the result backend per app."""
    celery = Celery("waybill_bench", broker=broker, backend=backend)
    celery.conf.update(broker_connection_retry_on_startup=True)
    celery.task(name="noop")(noop)
    celery.task(name="zip_export")(zip_export)
    return celery


# The worker's app (`celery -A celery_app worker`).
app = make_app(
    os.environ.get("BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    os.environ.get("BENCH_BACKEND", "rpc://"),
)
