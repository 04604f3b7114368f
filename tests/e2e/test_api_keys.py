"""API keys are stored hashed and never logged: after traffic that goes through every
logging path (success, 401, 403, 404, 422, a finished and a failed export), no key
appears in any service's log or in the database."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from support.stack import ADMIN_KEY, Stack, create_export, finished, upload


def database_text(stack: Stack) -> str:
    """Every row of the tables that could hold a key, as text."""

    async def dump() -> str:
        url = stack.infra.database_url.replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(url)
        try:
            rows = []
            for table in ("users", "api_keys", "tasks", "task_events", "outbox"):
                rows += await conn.fetch(f"SELECT t::text AS row FROM {table} t")
            return "\n".join(r["row"] for r in rows)
        finally:
            await conn.close()

    return asyncio.run(dump())


def test_keys_are_hashed_and_never_logged(stack: Stack) -> None:
    wrong_key = "wrong-key-0123456789abcdef"
    with stack.client() as admin:
        created = admin.post("/api/users", json={"name": "key-owner"})
        assert created.status_code == 201
    key = created.json()["api_key"]
    assert len(key) >= 32  # generated, high-entropy

    with stack.client(key) as user, stack.client(wrong_key) as stranger:
        assert user.get("/api/users/me").status_code == 200
        assert stranger.get("/api/files").status_code == 401
        assert user.post("/api/data-export/cleanup").status_code == 403
        assert user.get("/api/files/999999").status_code == 404
        assert user.post("/api/data-export/jobs", json={"bad": 1}).status_code == 422
        good = upload(user, "ok.csv", b"a,b\n1,2\n")
        bad = upload(user, "bad.json", b"{not json")
        jobs = [create_export(user, "k", [f["id"]], "parquet").json() for f in (good, bad)]
        for job in jobs:
            finished(user, job["id"])
        assert user.get(f"/api/data-export/jobs/{jobs[0]['id']}").json()["status"] == "completed"

    logs = {path.name: path.read_text() for path in (stack.infra.workdir / "logs").glob("*.log")}
    assert {name.split("-")[0] for name in logs} >= {"gateway", "export", "tracker", "extraction"}
    for secret in (key, wrong_key, ADMIN_KEY):
        leaked = [name for name, text in logs.items() if secret in text]
        assert not leaked, f"a key appears in {leaked}"

    stored = database_text(stack)
    assert key not in stored and ADMIN_KEY not in stored
    hashes = re.findall(r"\b[0-9a-f]{64}\b", stored)
    assert hashes, "the api_keys table holds key hashes"
