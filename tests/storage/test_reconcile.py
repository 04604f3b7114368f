"""The storage reconcile's comparison (`absent_ids`) against the real S3 server: rows
sorted bytewise, checked in batches against one ListObjectsV2 walk per prefix."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

from support.stack import Infra, s3_client
from waybill_shared.settings import WaybillSettings
from waybill_shared.storage import Storage
from waybill_shared.tasks.retention import absent_ids


async def _rows(rows: list[tuple[int, str]]) -> AsyncIterator[tuple[int, str]]:
    for row in sorted(rows, key=lambda r: r[1].encode()):
        yield row


class CountingStorage(Storage):
    """The real storage, counting how often the comparison asks it."""

    listings = 0

    async def present(self, keys: list[str], **kwargs: Any) -> set[str]:
        self.listings += 1
        return await super().present(keys, **kwargs)


def test_absent_ids_in_batches_across_prefixes(infra: Infra) -> None:
    bucket = f"reconcile-{uuid.uuid4().hex[:8]}"
    s3 = s3_client(infra)
    s3.make_bucket(bucket)
    stored = ["a/1", "a/3", "a/5", "b-c/1", "b/2", "b/4", "plain", "é/x"]
    for key in stored:
        s3.put_object(bucket, key, io.BytesIO(b"x"), 1)
    s3.put_object(bucket, "a/4-not-in-the-database", io.BytesIO(b"x"), 1)
    rows = [
        (1, "a/1"),
        (2, "a/2"),  # absent
        (3, "a/3"),
        (4, "a/3"),  # the same key twice, across a batch boundary
        (5, "a/5"),
        (6, "a/6"),  # absent, the last of its prefix
        (7, "b-c/1"),  # sorts before b/ ('-' < '/')
        (8, "b/1"),  # absent
        (9, "b/2"),
        (10, "b/4"),
        (11, "plain"),  # no prefix
        (12, "zzz"),  # absent, no prefix
        (13, "é/x"),  # non-ASCII: bytewise order
        (14, "é/y"),  # absent
    ]
    settings = WaybillSettings(
        s3_endpoint=f"127.0.0.1:{infra.s3_port}", s3_bucket=bucket, _env_file=None
    )
    for batch in (1, 2, 3, 100):
        storage = CountingStorage(settings)
        absent = asyncio.run(absent_ids(storage, _rows(rows), batch=batch))
        assert absent == {2, 6, 8, 12, 14}, batch
    # Batches of 100 are split only where the first path segment changes: a/, b-c/,
    # b/, plain, zzz (a key without "/" is its own prefix), é/.
    assert storage.listings == 6
