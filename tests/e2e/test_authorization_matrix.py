"""The gateway's authorization matrix, walked against the running services.

Every object type x every action on it x four callers:

- owner: the user who made the object -> the route's success code;
- other: another user -> 404, with the same body as for an id that does not exist
  (an object of someone else is indistinguishable from no object at all);
- admin: administrators read and act on every object (`visible_to` / `may_read` in the
  gateway: `user.is_admin or user.id == owner_id`) -> the success code;
- anonymous: no key -> 401 (a wrong key -> 401 too).

Admin-only endpoints (users, service accounts, cleanup, dead letters) answer 403 to
everybody else.
Actions that make something from an object (export it, extract a workflow from it,
copy it, use it as a job input, re-import it) count as reading it: 404 for another
user. The table below is the documentation; a test walks the OpenAPI document so that
a route without a row fails.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import waybill_gateway.api
from support.provenance import Recorder
from support.stack import Stack, finished, upload, wait_task
from waybill_gateway.deps import get_admin_user
from waybill_shared.db.pg import init_json_codecs
from waybill_shared.tasks.repository import register_task

OWNER, OTHER, ADMIN, ANONYMOUS = "owner", "other", "admin", "anonymous"
CALLERS = (OWNER, OTHER, ADMIN, ANONYMOUS)
TASK_EXPORT = "application/vnd.galaxy.task.export+json"
PROBES = {"/healthz", "/livez", "/readyz", "/metrics"}


@dataclass(frozen=True)
class Ref:
    """An id inside a JSON body, filled in from the world (keeps its type: an int)."""

    name: str


# What a list answer must show: does the caller see the owner's object in it?
Shows = Callable[[httpx.Client, str, dict[str, Any]], bool]


@dataclass(frozen=True)
class Case:
    """One row: an action on one object, and the status each caller gets.

    `path` and string values of `body` are templates: {history} is the owner's object,
    {my_history} the caller's own one (see World). `obj` names the owner's object whose
    access the row checks; the 404 for another user is compared with the answer for a
    nonexistent one. `shows` makes it a list row: the owner and the admin see the
    object in the list, another user gets 200 without it. `fresh` makes it a
    destructive row: each caller acts on an object of its own, made for the check."""

    obj: str
    action: str
    method: str
    path: str
    expect: dict[str, int]
    body: Any = None
    form: dict[str, str] | None = None  # multipart upload of a small file
    headers: dict[str, str] = field(default_factory=dict)
    shows: Shows | None = None
    fresh: str | None = None  # World method making the object a destructive row consumes
    probe: str | None = None  # the owner's view of that object, before and after

    def label(self) -> str:
        return f"{self.obj}: {self.action}"


def own(obj: str, action: str, method: str, path: str, ok: int, **kw: Any) -> Case:
    """An object of the owner: owner and admin succeed, another user 404, nobody 401."""
    return Case(obj, action, method, path, {OWNER: ok, OTHER: 404, ADMIN: ok, ANONYMOUS: 401}, **kw)


def anyone(obj: str, action: str, method: str, path: str, ok: int, **kw: Any) -> Case:
    """The caller's own things (a new history, who am I): every user succeeds."""
    return Case(obj, action, method, path, {OWNER: ok, OTHER: ok, ADMIN: ok, ANONYMOUS: 401}, **kw)


def listing(obj: str, action: str, path: str, shows: Shows) -> Case:
    """A list: 200 for every user; the owner's object shows to the owner and the admin."""
    return Case(
        obj, action, "GET", path, {OWNER: 200, OTHER: 200, ADMIN: 200, ANONYMOUS: 401}, shows=shows
    )


def admin_only(action: str, method: str, path: str, ok: int, **kw: Any) -> Case:
    return Case(
        "admin endpoint",
        action,
        method,
        path,
        {OWNER: 403, OTHER: 403, ADMIN: ok, ANONYMOUS: 401},
        **kw,
    )


def listed_ids(client: httpx.Client, path: str) -> set[int]:
    """Every id a list shows, all pages (following its Link rel="next")."""
    ids: set[int] = set()
    url: str | None = path
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        ids |= {int(item["id"]) for item in response.json()}
        url = response.links.get("next", {}).get("url")
    return ids


def contains(key: str) -> Shows:
    def shows(client: httpx.Client, path: str, values: dict[str, Any]) -> bool:
        return int(values[key]) in listed_ids(client, path)

    return shows


def counts_jobs(client: httpx.Client, path: str, values: dict[str, Any]) -> bool:
    """Statistics show the owner's export (the other user has none of its own)."""
    return int(client.get(path).json()["total_jobs"]) > 0


def job_body(history: str, **kw: Any) -> dict[str, Any]:
    return {"history_id": Ref(history), "tool_id": "authz_tool", "tool_version": "1.0.0", **kw}


def extract_body(**ids: Any) -> dict[str, Any]:
    return {"workflow_name": "authz {caller}", **ids}


WRITE_STORE = {"model_store_format": "tar.gz"}

# fmt: off
CASES: list[Case] = [
    # --- users and administration --------------------------------------------------------
    admin_only("create a user", "POST", "/api/users", 201, body={"name": "authz-{nonce}"}),
    admin_only("list dead letters", "GET", "/api/admin/dead-letters?queue={prefix}.provenance.events&limit=1", 200),
    admin_only("replay dead letters", "POST", "/api/admin/dead-letters/replay", 200,
               body={"queue": "{prefix}.provenance.events", "limit": 1}),
    admin_only("clean up expired exports", "POST", "/api/data-export/cleanup", 200),
    admin_only("create a service account", "POST", "/api/service-accounts", 201,
               body={"name": "authz-{nonce}", "amqp_user": "authz-{nonce}", "acts_for": "self"}),
    admin_only("list service accounts", "GET", "/api/service-accounts", 200),
    admin_only("read a service account", "GET", "/api/service-accounts/{service_account}", 200),
    # The administrator's call deletes it; everybody else is refused before the lookup.
    admin_only("delete a service account", "DELETE", "/api/service-accounts/{doomed_account}",
               204),
    anyone("user", "who am I", "GET", "/api/users/me", 200),
    anyone("user", "usage and quotas", "GET", "/api/users/me/usage", 200),
    anyone("user", "create an API key", "POST", "/api/users/me/keys", 201,
           body={"name": "authz-{nonce}"}),
    anyone("user", "list own API keys", "GET", "/api/users/me/keys", 200),
    # Keys under /me are the caller's own, an administrator's too: the owner's key is
    # nobody else's to read or revoke there (administrators use /api/users/{id}/keys).
    Case("api_key", "read", "GET", "/api/users/me/keys/{api_key}",
         {OWNER: 200, OTHER: 404, ADMIN: 404, ANONYMOUS: 401}),
    Case("api_key", "revoke", "DELETE", "/api/users/me/keys/{api_key}",
         {OWNER: 204, OTHER: 404, ADMIN: 404, ANONYMOUS: 401},
         fresh="new_key", probe="/api/users/me/keys/{api_key}"),
    admin_only("list a user's API keys", "GET", "/api/users/{owner_user}/keys", 200),
    admin_only("revoke a user's API key", "DELETE", "/api/users/{owner_user}/keys/{doomed_key}",
               204),
    admin_only("set a user's quotas", "PUT", "/api/users/{owner_user}/quotas", 200, body={}),

    # --- projects and files (the catalog) ------------------------------------------------
    anyone("project", "create", "POST", "/api/projects", 201, body={"name": "authz"}),
    listing("project", "list", "/api/projects", contains("project")),
    own("project", "upload a file into", "POST", "/api/files", 201, form={"project_id": "{project}"}),
    listing("project", "list its files", "/api/files?project_id={project}", contains("file")),
    anyone("file", "upload", "POST", "/api/files", 201, form={}),
    listing("file", "list", "/api/files", contains("file")),
    own("file", "read", "GET", "/api/files/{file}", 200),
    own("file", "download", "GET", "/api/files/{file}/content", 200),
    own("file", "delete", "DELETE", "/api/files/{file}", 204,
        fresh="new_file", probe="/api/files/{file}"),
    own("file", "add to own history", "POST", "/api/histories/{my_history}/contents", 201,
        body={"src": "file", "id": Ref("file")}),
    own("file", "record as a job output", "POST", "/api/jobs", 201,
        body=job_body("my_history", outputs=[{"name": "out", "file_id": Ref("file")}])),
    own("file", "batch export", "POST", "/api/data-export/jobs", 202,
        body={"name": "authz", "file_ids": [Ref("file")], "export_format": "zip"}),

    # --- histories -----------------------------------------------------------------------
    anyone("history", "create", "POST", "/api/histories", 201, body={"name": "authz"}),
    listing("history", "list", "/api/histories", contains("history")),
    own("history", "read", "GET", "/api/histories/{history}", 200),
    own("history", "list contents", "GET", "/api/histories/{history}/contents", 200),
    own("history", "add a dataset to", "POST", "/api/histories/{history}/contents", 201,
        body={"src": "file", "id": Ref("my_file")}),
    own("history", "record a job into", "POST", "/api/jobs", 201,
        body=job_body("history", outputs=[{"name": "out", "file_id": Ref("my_file")}])),
    own("history", "extraction summary", "GET", "/api/histories/{history}/extraction_summary", 200),
    own("history", "extract a workflow (legacy, by hid)", "POST",
        "/api/histories/{history}/extract_workflow", 202,
        body={"workflow_name": "authz", "job_ids": [Ref("job")],
              "dataset_hids": [Ref("dataset_hid"), Ref("dataset_b_hid")]}),
    own("history", "extract a workflow from (from_history_id)", "POST", "/api/workflows/extract", 202,
        body=extract_body(from_history_id=Ref("history"), hda_ids=[Ref("my_dataset")])),
    own("history", "list exports", "GET", "/api/histories/{history}/exports", 200,
        headers={"Accept": TASK_EXPORT}),
    own("history", "prepare a download", "POST", "/api/histories/{history}/prepare_store_download",
        202, body={"model_store_format": "rocrate.zip"}),
    own("history", "write a long-term export", "POST", "/api/histories/{history}/write_store", 202,
        body={**WRITE_STORE, "target_uri": "s3://{bucket}/remote/authz-{caller}-{nonce}.tar.gz"}),

    # --- datasets, collections, collection elements --------------------------------------
    own("dataset", "read", "GET", "/api/datasets/{dataset}", 200),
    own("dataset", "copy into own history", "POST", "/api/histories/{my_history}/contents", 201,
        body={"src": "hda", "id": Ref("dataset")}),
    own("dataset", "put in a new collection", "POST", "/api/histories/{my_history}/contents", 201,
        body={"type": "dataset_collection", "collection_type": "list", "name": "authz",
              "element_identifiers": [{"name": "x", "src": "hda", "id": Ref("dataset")}]}),
    own("dataset", "use as a job input", "POST", "/api/jobs", 201,
        body=job_body("my_history", inputs=[{"name": "input1", "src": "hda", "id": Ref("dataset")}])),
    own("dataset", "batch export", "POST", "/api/data-export/jobs", 202,
        body={"name": "authz", "dataset_ids": [Ref("dataset")], "export_format": "zip"}),
    own("dataset", "extract a workflow from", "POST", "/api/workflows/extract", 202,
        body=extract_body(hda_ids=[Ref("dataset")])),
    own("collection", "read", "GET", "/api/dataset_collections/{collection}", 200),
    own("collection", "copy into own history", "POST", "/api/histories/{my_history}/contents", 201,
        body={"src": "hdca", "id": Ref("collection")}),
    own("collection", "use as a job input", "POST", "/api/jobs", 201,
        body=job_body("my_history", inputs=[{"name": "input", "src": "hdca", "id": Ref("collection")}])),
    own("collection", "map a job over", "POST", "/api/jobs", 201,
        body=job_body("my_history", map_over=[{"name": "input", "id": Ref("collection")}],
                      outputs=[{"name": "out", "elements": [
                          {"identifier": "forward", "file_id": Ref("my_file")},
                          {"identifier": "reverse", "file_id": Ref("my_file")}]}])),
    own("collection", "extract a workflow from", "POST", "/api/workflows/extract", 202,
        body=extract_body(hdca_ids=[Ref("collection")])),
    own("element", "use as a job input", "POST", "/api/jobs", 201,
        body=job_body("my_history", inputs=[{"name": "input", "src": "dce", "id": Ref("element")}])),

    # --- jobs and mapped runs ------------------------------------------------------------
    own("job", "read", "GET", "/api/jobs/{job}", 200),
    own("job", "extract a workflow from", "POST", "/api/workflows/extract", 202,
        body=extract_body(job_ids=[Ref("job")])),
    own("job", "extract into own history's form (legacy)", "POST",
        "/api/histories/{my_history}/extract_workflow", 202,
        body={"workflow_name": "authz", "job_ids": [Ref("job")]}),
    own("mapped_run", "extract a workflow from", "POST", "/api/workflows/extract", 202,
        body=extract_body(implicit_collection_jobs_ids=[Ref("mapped_run")])),

    # --- batch exports -------------------------------------------------------------------
    listing("export_job", "list", "/api/data-export/jobs", contains("export_job")),
    listing("export_job", "statistics", "/api/data-export/statistics", counts_jobs),
    anyone("export format", "list with their options", "GET", "/api/data-export/formats", 200),
    own("export_job", "read", "GET", "/api/data-export/jobs/{export_job}", 200),
    own("export_job", "read its events", "GET", "/api/data-export/jobs/{export_job}/events", 200),
    own("export_job", "follow its stream", "GET", "/api/data-export/jobs/{export_job}/stream", 200),
    own("export_job", "cancel", "POST", "/api/data-export/jobs/{export_job}/cancel", 200,
        fresh="queued_export", probe="/api/data-export/jobs/{export_job}"),
    own("export_job", "delete", "DELETE", "/api/data-export/jobs/{export_job}", 204,
        fresh="finished_export", probe="/api/data-export/jobs/{export_job}"),

    # --- history exports: short-term downloads, long-term records, re-import -------------
    own("short_term_export", "ready?", "GET", "/api/short_term_storage/{short_term_export}/ready", 200),
    own("short_term_export", "download", "GET", "/api/short_term_storage/{short_term_export}", 302),
    own("short_term_export", "re-import by its task id", "POST", "/api/histories/from_store_async",
        202, body={"store_content_uri": "{short_term_export}"}),
    own("remote_export", "re-import by uri", "POST", "/api/histories/from_store_async", 202,
        body={"store_content_uri": "{remote_export}"}),
    own("export_record", "re-import by record id", "POST", "/api/histories/from_store_async", 202,
        body={"store_content_uri": "{export_record}"}),
    # A long-term target belongs to the owner of the exports written there: nobody else
    # writes another history over it (not even an admin: it would replace the owner's
    # archive, and whoever re-imports it would read the other's history). Refusing a
    # write cannot hide that the target is taken: 409, the detail names no owner.
    Case("remote_export", "write another history over it", "POST",
         "/api/histories/{my_history}/write_store",
         {OWNER: 202, OTHER: 409, ADMIN: 409, ANONYMOUS: 401},
         body={**WRITE_STORE, "target_uri": "{remote_export}"}),

    # --- workflows and tasks -------------------------------------------------------------
    own("workflow", "read", "GET", "/api/workflows/{workflow}", 200),
    own("workflow", "download (.ga)", "GET", "/api/workflows/{workflow}/download?format=ga", 200),
    own("workflow", "download (gxformat2)", "GET", "/api/workflows/{workflow}/download?format=format2", 200),
    own("extraction_task", "state", "GET", "/api/tasks/{extraction_task}/state", 200),
    own("extraction_task", "result", "GET", "/api/tasks/{extraction_task}/result", 200),
    own("extraction_task", "follow its stream", "GET", "/api/tasks/{extraction_task}/stream", 200),
    own("history_export_task", "state", "GET", "/api/tasks/{history_export_task}/state", 200),
    own("history_export_task", "result", "GET", "/api/tasks/{history_export_task}/result", 200),
    own("history_export_task", "follow its stream", "GET", "/api/tasks/{history_export_task}/stream", 200),
    own("data_export_task", "state", "GET", "/api/tasks/{data_export_task}/state", 200),
    own("data_export_task", "result", "GET", "/api/tasks/{data_export_task}/result", 200),
    own("data_export_task", "follow its stream", "GET", "/api/tasks/{data_export_task}/stream", 200),

    # --- webhooks --------------------------------------------------------------------------
    anyone("webhook", "subscribe", "POST", "/api/webhooks", 201,
           body={"url": "http://127.0.0.1:9/hooks", "events": ["all"]}),
    listing("webhook", "list", "/api/webhooks", contains("webhook")),
    own("webhook", "read", "GET", "/api/webhooks/{webhook}", 200),
    own("webhook", "change", "PATCH", "/api/webhooks/{webhook}", 200, body={"events": ["failed"]}),
    own("webhook", "send a test", "POST", "/api/webhooks/{webhook}/test", 202),
    own("webhook", "read its deliveries", "GET", "/api/webhooks/{webhook}/deliveries", 200),
    own("webhook", "delete", "DELETE", "/api/webhooks/{webhook}", 204,
        fresh="new_webhook", probe="/api/webhooks/{webhook}"),
]
# fmt: on

# Stand-ins that name nothing, per object: what another user's 404 is compared with.
GHOST_ID = 2**31 - 1
GHOST_UUID = "00000000-0000-4000-8000-000000000000"
GHOSTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "short_term_export": lambda v: GHOST_UUID,
    "extraction_task": lambda v: GHOST_UUID,
    "history_export_task": lambda v: GHOST_UUID,
    "data_export_task": lambda v: GHOST_UUID,
    "remote_export": lambda v: f"s3://{v['bucket']}/remote/no-such-export.tar.gz",
    "export_record": lambda v: str(GHOST_ID),
}


def ghost(key: str, values: dict[str, Any]) -> Any:
    return GHOSTS[key](values) if key in GHOSTS else GHOST_ID


# --- the owner's objects, and every caller's own ------------------------------------------


@dataclass
class World:
    stack: Stack
    clients: dict[str, httpx.Client]
    ids: dict[str, Any]  # the owner's objects, by name
    mine: dict[str, dict[str, Any]]  # each caller's own history, dataset and file
    owner_id: int

    def values(self, caller: str, **overrides: Any) -> dict[str, Any]:
        return {
            **self.ids,
            **self.mine[caller],
            "caller": caller,
            "nonce": uuid.uuid4().hex[:12],
            **overrides,
        }

    # Fresh objects of the owner, for destructive rows.
    def new_key(self) -> int:
        created = self.clients[OWNER].post(
            "/api/users/me/keys", json={"name": f"doomed-{uuid.uuid4().hex[:8]}"}
        )
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    def new_file(self) -> int:
        return int(upload(self.clients[OWNER], "doomed.txt", b"to be deleted\n")["id"])

    def new_webhook(self) -> int:
        hook = self.clients[OWNER].post(
            "/api/webhooks", json={"url": "http://127.0.0.1:9/doomed", "events": ["all"]}
        )
        assert hook.status_code == 201, hook.text
        return int(hook.json()["id"])

    def finished_export(self) -> int:
        owner = self.clients[OWNER]
        job = owner.post(
            "/api/data-export/jobs",
            json={"name": "doomed", "file_ids": [self.ids["file"]], "export_format": "zip"},
        )
        assert job.status_code == 202, job.text
        assert finished(owner, job.json()["id"])["status"] == "completed"
        return int(job.json()["id"])

    def queued_export(self) -> int:
        """A job still waiting for a worker: registered as the gateway registers one,
        but with no command published, so it stays pending while it is checked."""

        async def register() -> int:
            conn = await asyncpg.connect(self.stack.infra.database_url.replace("+asyncpg", ""))
            try:
                async with conn.transaction():
                    await init_json_codecs(conn)
                    registered = await register_task(
                        conn,
                        task_uuid=uuid.uuid4(),
                        kind="data_export",
                        owner_id=self.owner_id,
                        request={"name": "queued", "export_format": "zip", "file_ids": []},
                        total_items=1,
                        items=[
                            {
                                "file_id": self.ids["file"],
                                "dataset_id": None,
                                "filename": "secret.txt",
                                "status": "pending",
                            }
                        ],
                    )
                    return registered.task.id
            finally:
                await conn.close()

        return asyncio.run(register())


def own_things(client: httpx.Client, who: str) -> dict[str, Any]:
    rec = Recorder(client)
    history = rec.history(f"{who}'s own history")
    dataset = rec.dataset(history, f"{who}'s data\n".encode(), f"{who}.txt")
    return {"my_history": history, "my_dataset": dataset["id"], "my_file": rec.file()}


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    tag = uuid.uuid4().hex[:8]
    owner = stack.new_user(f"authz-owner-{tag}")
    other = stack.new_user(f"authz-other-{tag}")
    admin = stack.client()
    anonymous = stack.client(None)
    clients = {OWNER: owner, OTHER: other, ADMIN: admin, ANONYMOUS: anonymous}
    try:
        rec = Recorder(owner)
        project = owner.post("/api/projects", json={"name": "owner's project"})
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        file = upload(owner, "secret.txt", b"the owner's secret\n", project_id=str(project_id))
        history = rec.history("owner's history")
        a = rec.dataset(history, b"alpha\n", "a.txt")
        b = rec.dataset(history, b"beta\n", "b.txt")
        cat = rec.run(
            history,
            "cat1",
            {"input1": ("hda", a["id"]), "queries_0|input2": ("hda", b["id"])},
            ["out_file1"],
        )
        pair = rec.paired(history)
        element = owner.get(f"/api/dataset_collections/{pair['id']}").json()["elements"][0]["id"]
        mapped = rec.job(
            {
                "history_id": history,
                "tool_id": "random_lines1",
                "inputs": [{"name": "input", "src": "hdca", "id": pair["id"]}],
                "map_over": [{"name": "input", "id": pair["id"]}],
                "outputs": [
                    {
                        "name": "out_file1",
                        "elements": [
                            {"identifier": "forward", "file_id": rec.file()},
                            {"identifier": "reverse", "file_id": rec.file()},
                        ],
                    }
                ],
            }
        )

        export = owner.post(
            "/api/data-export/jobs",
            json={
                "name": "owner's export",
                "file_ids": [file["id"]],
                "dataset_ids": [a["id"]],
                "export_format": "zip",
            },
        )
        assert export.status_code == 202, export.text
        done = finished(owner, export.json()["id"])
        assert done["status"] == "completed", done

        short = owner.post(
            f"/api/histories/{history}/prepare_store_download",
            json={"model_store_format": "rocrate.zip"},
        )
        assert short.status_code == 202, short.text
        assert wait_task(owner, short.json()["task_id"], timeout=90) == "SUCCESS", owner.get(
            f"/api/tasks/{short.json()['task_id']}/result"
        ).text

        target = f"s3://{stack.infra.bucket}/remote/authz-owner-{tag}.tar.gz"
        remote = owner.post(
            f"/api/histories/{history}/write_store",
            json={"target_uri": target, "model_store_format": "tar.gz"},
        )
        assert remote.status_code == 202, remote.text
        assert wait_task(owner, remote.json()["task_id"], timeout=90) == "SUCCESS", owner.get(
            f"/api/tasks/{remote.json()['task_id']}/result"
        ).text
        records = owner.get(f"/api/histories/{history}/exports").json()
        record = next(r for r in records if r["task_uuid"] == remote.json()["task_id"])
        assert record["export_metadata"]["result_data"]["uri"] == target

        extraction = owner.post(
            "/api/workflows/extract",
            json={
                "workflow_name": "owner's workflow",
                "from_history_id": history,
                "job_ids": [cat["jobs"][0]["id"]],
                "hda_ids": [a["id"], b["id"]],
            },
            headers={"Prefer": "wait=30"},
        )
        assert extraction.status_code == 200, extraction.text
        assert extraction.json()["status"] == "completed", extraction.json()

        accounts = [
            admin.post(
                "/api/service-accounts",
                json={
                    "name": f"authz-{what}-{tag}",
                    "amqp_user": f"authz-{what}-{tag}",
                    "acts_for": "any",
                },
            )
            for what in ("kept", "doomed")
        ]
        assert all(a.status_code == 201 for a in accounts), [a.text for a in accounts]

        keys = [
            owner.post("/api/users/me/keys", json={"name": f"authz-{what}-{tag}"})
            for what in ("kept", "doomed")
        ]
        assert all(k.status_code == 201 for k in keys), [k.text for k in keys]

        webhook = owner.post(
            "/api/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["completed"]}
        )
        assert webhook.status_code == 201, webhook.text

        ids = {
            "webhook": webhook.json()["id"],
            "api_key": keys[0].json()["id"],
            "doomed_key": keys[1].json()["id"],
            "owner_user": owner.get("/api/users/me").json()["id"],
            "service_account": accounts[0].json()["id"],
            "doomed_account": accounts[1].json()["id"],
            "project": project_id,
            "file": file["id"],
            "history": history,
            "dataset": a["id"],
            "dataset_hid": a["hid"],
            "dataset_b_hid": b["hid"],
            "collection": pair["id"],
            "element": element,
            "job": cat["jobs"][0]["id"],
            "mapped_run": mapped["implicit_collection_jobs_id"],
            "export_job": done["id"],
            "data_export_task": done["task_id"],
            "short_term_export": short.json()["storage_request_id"],
            "remote_export": target,
            "export_record": str(record["id"]),
            "history_export_task": remote.json()["task_id"],
            "workflow": extraction.json()["workflow_id"],
            "extraction_task": extraction.json()["task_id"],
            "bucket": stack.infra.bucket,
            "prefix": stack.infra.prefix,
        }
        mine = {who: own_things(clients[who], who) for who in (OWNER, OTHER, ADMIN)}
        mine[ANONYMOUS] = mine[OWNER]  # never reached: anonymous requests stop at the key
        owner_id = owner.get("/api/users/me").json()["id"]
        yield World(stack, clients, ids, mine, owner_id)
    finally:
        for client in clients.values():
            client.close()


# --- walking the matrix -------------------------------------------------------------------


def render(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, Ref):
        return values[template.name]
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template


def send(client: httpx.Client, case: Case, values: dict[str, Any]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": case.headers, "follow_redirects": False}
    if case.form is not None:
        kwargs["files"] = {"file": ("authz.txt", b"authorization matrix\n")}
        kwargs["data"] = render(case.form, values)
    elif case.body is not None:
        kwargs["json"] = render(case.body, values)
    return client.request(case.method, render(case.path, values), **kwargs)


def explain(case: Case, caller: str, response: httpx.Response) -> str:
    return (
        f"{case.label()} as {caller}: {case.method} {response.request.url} answered "
        f"{response.status_code}, expected {case.expect[caller]}: {response.text[:500]}"
    )


def masked(response: httpx.Response, value: Any) -> tuple[int, str, str]:
    """The answer with the object's id blanked out."""
    text = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", "<id>", response.text)
    return response.status_code, response.headers.get("content-type", ""), text


def assert_no_existence_leak(
    client: httpx.Client, case: Case, values: dict[str, Any], response: httpx.Response
) -> None:
    """Another user's object answers exactly like one that does not exist."""
    key = case.obj
    nothing = {**values, key: ghost(key, values)}
    unknown = send(client, case, nothing)
    assert unknown.status_code == 404, explain(case, "other (nonexistent id)", unknown)
    assert masked(response, values[key]) == masked(unknown, nothing[key]), (
        f"{case.label()}: another user's object answers differently from a nonexistent one:\n"
        f"  theirs:      {response.text}\n  nonexistent: {unknown.text}"
    )


def assert_unauthenticated(case: Case, response: httpx.Response, world: World) -> None:
    assert response.headers.get("www-authenticate") == "Bearer", explain(case, ANONYMOUS, response)
    with world.stack.client("not-a-valid-key") as wrong:
        bad_key = send(wrong, case, world.values(ANONYMOUS))
    assert bad_key.status_code == 401, explain(case, "a wrong key", bad_key)


def assert_access(case: Case, caller: str, world: World) -> None:
    client = world.clients[caller]
    values = world.values(caller)
    response = send(client, case, values)
    assert response.status_code == case.expect[caller], explain(case, caller, response)
    if caller == ANONYMOUS:
        assert_unauthenticated(case, response, world)
    elif caller == OTHER and case.expect[OTHER] == 404:
        assert_no_existence_leak(client, case, values, response)
    if case.shows is not None and caller != ANONYMOUS:
        path = render(case.path, values)
        seen = case.shows(client, path, values)
        assert seen is (caller != OTHER), (
            f"{case.label()} as {caller}: the owner's {case.obj} is "
            f"{'listed' if seen else 'missing'} in {path}"
        )


def view(response: httpx.Response) -> dict[str, Any]:
    """An object as its owner sees it, minus the download link (signed on every GET)."""
    body: dict[str, Any] = response.json()
    body.pop("download_url", None)
    return body


def assert_destructive_access(case: Case, caller: str, world: World) -> None:
    """On an object made for this check: a refused caller leaves it intact (and the
    owner can still do it afterwards: the refusal was about the caller, not the
    object's state); an allowed one changes it."""
    assert case.fresh is not None and case.probe is not None
    make: Callable[[], Any] = getattr(world, case.fresh)
    values = world.values(caller, **{case.obj: make()})
    owner = world.clients[OWNER]
    probe = render(case.probe, values)
    before = owner.get(probe)
    assert before.status_code == 200, before.text

    response = send(world.clients[caller], case, values)
    assert response.status_code == case.expect[caller], explain(case, caller, response)
    after = owner.get(probe)
    if case.expect[caller] >= 400:
        assert after.status_code == 200 and view(after) == view(before), (
            f"{case.label()} refused to {caller}, yet the object changed: {after.text}"
        )
        if caller == ANONYMOUS:
            assert_unauthenticated(case, response, world)
        else:
            assert_no_existence_leak(world.clients[caller], case, values, response)
        done = send(owner, case, values)
        assert done.status_code == case.expect[OWNER], explain(case, OWNER, done)
    elif case.method == "DELETE":
        assert after.status_code == 404, f"{case.label()} by {caller}: still there: {after.text}"
    else:
        assert after.status_code == 200 and after.json()["status"] == "cancelled", after.text


@pytest.mark.parametrize(
    ("case", "caller"),
    [pytest.param(c, who, id=f"{c.label()} [{who}]") for c in CASES for who in CALLERS],
)
def test_authorization_matrix(case: Case, caller: str, world: World) -> None:
    if case.fresh is not None:
        assert_destructive_access(case, caller, world)
    else:
        assert_access(case, caller, world)


# --- completeness -------------------------------------------------------------------------


def operation(method: str, path: str) -> tuple[str, str]:
    """A route's identity: its method and path, query dropped, parameters unnamed."""
    return method.upper(), re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def test_every_route_has_a_row(stack: Stack) -> None:
    """A new route without a row in the matrix fails here (and a row for a route that
    no longer exists, too)."""
    document = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=30).json()
    routes = {
        operation(method, path)
        for path, item in document["paths"].items()
        if path not in PROBES
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    rows = {operation(c.method, c.path) for c in CASES}
    assert routes - rows == set(), f"routes without a row in the matrix: {sorted(routes - rows)}"
    assert rows - routes == set(), f"rows for routes that do not exist: {sorted(rows - routes)}"
    objects = {c.obj for c in CASES}
    print(
        f"authorization matrix: {len(CASES)} rows (object type x action) over "
        f"{len(objects)} object types x {len(CALLERS)} callers = "
        f"{len(CASES) * len(CALLERS)} cases walked, covering all {len(routes)} operations"
    )


def requires_admin(dependant: Dependant) -> bool:
    return any(d.call is get_admin_user or requires_admin(d) for d in dependant.dependencies)


def test_admin_only_routes_are_admin_rows() -> None:
    """The routes the gateway guards with its admin dependency are exactly the rows
    that expect 403 from users (and 401 without a key), walked above."""
    guarded: set[tuple[str, str]] = set()
    for module in pkgutil.iter_modules(waybill_gateway.api.__path__):
        router = getattr(
            importlib.import_module(f"waybill_gateway.api.{module.name}"), "router", None
        )
        if router is None:
            continue
        for route in router.routes:
            if isinstance(route, APIRoute) and requires_admin(route.dependant):
                guarded |= {operation(method, route.path) for method in route.methods or ()}
    admin_rows = {
        operation(c.method, c.path): c for c in CASES if c.expect[OWNER] == c.expect[OTHER] == 403
    }
    assert guarded, "no admin-only route found: the introspection is broken"
    assert set(admin_rows) == guarded
    for row in admin_rows.values():
        assert row.expect[ANONYMOUS] == 401 and row.expect[ADMIN] < 300, row
