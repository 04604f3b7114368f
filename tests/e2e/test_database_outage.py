"""Take PostgreSQL away while work arrives and runs, then bring it back: the gateway
answers 503 with Retry-After (never 500) while it is away; the workers and the tracker
pause and go on; every task accepted before the outage, and the commands published
straight to the broker during it (an export, an extraction), completes exactly once.

The database is a throwaway cluster of this test's own (tests/support/pg_cluster.py),
with a vhost, S3 server and services of their own: the shared server is never touched.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.amqp import publish_command
from support.pg_cluster import PgCluster
from support.provenance import Recorder
from support.stack import (
    Stack,
    create_export,
    stack_on_own_server,
    upload,
    wait_for,
)


@pytest.fixture
def own_database_stack(tmp_path: Path) -> Iterator[tuple[PgCluster, Stack]]:
    pg = PgCluster()
    with stack_on_own_server(pg, tmp_path, db_admin_url=pg.admin_url) as stack:
        yield pg, stack


@pytest.mark.slow
def test_database_outage_while_work_arrives_and_runs(
    own_database_stack: tuple[PgCluster, Stack],
) -> None:
    pg, stack = own_database_stack
    publisher = stack.publisher  # its service account is made while the database is up
    with stack.new_user() as user:
        owner_id = user.get("/api/users/me").json()["id"]
        rows = b"id,value\n" + b"".join(f"{i},{i * 3}\n".encode() for i in range(30_000))
        file_ids = [upload(user, f"d{i}.csv", rows)["id"] for i in range(3)]
        rec = Recorder(user)
        history = rec.history("outage")
        source = rec.dataset(history, b"b\na\n", "in.txt")
        run = rec.run(history, "sort1", {"input": ("hda", source["id"])}, ["out"])
        before = [create_export(user, f"before {i}", file_ids, "parquet") for i in range(8)]
        assert all(r.status_code == 202 for r in before), [r.text for r in before]
        accepted = [r.json()["id"] for r in before]
        wait_for(
            lambda: (
                user.get(f"/api/data-export/jobs/{accepted[0]}").json()["status"] == "processing"
            ),
            timeout=30,
            interval=0.05,
            message="an export under way",
        )

        pg.stop()
        down_at = time.monotonic()
        # Work that arrives while the database is away: a command straight to the broker.
        direct_task = str(uuid.uuid4())
        publish_command(
            stack.infra,
            "export.requested",
            json.dumps(
                {
                    "task_id": direct_task,
                    "owner_id": owner_id,
                    "name": "direct during the outage",
                    "file_ids": file_ids,
                    "export_format": "parquet",
                }
            ).encode(),
            message_type="waybill.data_export.requested.v1",
            principal=publisher,
        )
        extraction_task = str(uuid.uuid4())
        publish_command(
            stack.infra,
            "extraction.requested",
            json.dumps(
                {
                    "task_id": extraction_task,
                    "owner_id": owner_id,
                    "workflow_name": "extracted during the outage",
                    "job_ids": [run["jobs"][0]["id"]],
                }
            ).encode(),
            message_type="waybill.workflow_extraction.requested.v1",
            principal=publisher,
        )
        answers: list[httpx.Response] = []
        while time.monotonic() - down_at < 8:
            answers.append(create_export(user, "during", file_ids, "parquet"))
            answers.append(user.get(f"/api/data-export/jobs/{accepted[-1]}"))
            answers.append(user.get("/api/data-export/jobs"))
            answers.append(user.get("/api/files"))
            answers.append(user.post("/api/files", files={"file": ("late.csv", b"a,b\n1,2\n")}))
            answers.append(user.post("/api/histories", json={"name": "during"}))
            answers.append(user.get("/api/data-export/statistics"))
            time.sleep(0.2)
        unready = {
            name: service.ready() for name, service in stack.services.items() if service.ready()
        }
        pg.start()
        up_at = time.monotonic()

        assert {r.status_code for r in answers} == {503}, [
            (r.request.url.path, r.status_code, r.text) for r in answers if r.status_code != 503
        ]
        assert all(r.headers.get("Retry-After") for r in answers)
        assert all("detail" in r.json() for r in answers)
        assert unready == {}, f"ready without the database: {unready}"

        for service in stack.services.values():
            service.wait_ready(timeout=60)
        ready_again = time.monotonic() - up_at
        # Once ready, no request meets a connection the outage broke (ORM and asyncpg).
        for path in ("/api/files", "/api/histories", "/api/users/me", "/api/data-export/jobs"):
            assert user.get(path).status_code == 200, path
        after = [create_export(user, f"after {i}", file_ids, "parquet") for i in range(4)]
        assert all(r.status_code == 202 for r in after), [r.text for r in after]
        accepted += [r.json()["id"] for r in after]

        def jobs() -> list[dict[str, object]]:
            listed: list[dict[str, object]] = user.get(
                "/api/data-export/jobs", params={"limit": 100}
            ).json()
            return listed

        total = len(accepted) + 1  # and the direct command's
        wait_for(
            lambda: sum(j["status"] == "completed" for j in jobs()) == total,
            timeout=180,
            interval=0.5,
            message=f"all {total} exports completed",
        )
        wait_for(
            lambda: user.get(f"/api/tasks/{extraction_task}/state").json() == "SUCCESS",
            timeout=60,
            message="the extraction asked for during the outage",
        )
        recovered = time.monotonic() - up_at
        print(
            f"database down {up_at - down_at:.1f} s with {len(before)} exports in flight, an "
            f"export and an extraction published to the broker during it; {len(answers)} requests during the outage, all 503 "
            f"with Retry-After; services ready {ready_again:.1f} s and all {total} exports "
            f"and the extraction completed {recovered:.1f} s after the database was back"
        )

        # Nothing lost, nothing doubled: exactly these jobs, each completed once.
        listed = jobs()
        direct = [j for j in listed if j["task_id"] == direct_task]
        assert len(direct) == 1, listed
        assert sorted(int(str(j["id"])) for j in listed) == sorted([*accepted, direct[0]["id"]])
        for job in listed:
            assert job["status"] == "completed" and job["processed_files"] == 3, job
            events = user.get(f"/api/data-export/jobs/{job['id']}/events").json()
            assert [e["event_type"] for e in events].count("completed") == 1, events
            download = httpx.get(str(job["download_url"]), timeout=30)
            assert download.status_code == 200 and download.content[:4] == b"PK\x03\x04"
        assert user.get("/api/data-export/statistics").json()["by_status"] == {"completed": total}
