"""What the OpenAPI document says beyond the routes themselves: the description, the
tags, the links from each create to the routes that take what it made, and the two
request constraints that a static model cannot carry (each format's options; the
remote export prefixes and the page size limit of this deployment).

The links let a client (or a fuzzer: tests/e2e/test_fuzz_openapi.py) follow an id
from the answer that made it to every route using it. They are declared here, in one
table, and added to FastAPI's document when it is first built."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args

from fastapi import FastAPI

from waybill_shared.contracts.messages import ExportFormat
from waybill_shared.export_options import options_model
from waybill_shared.settings import WaybillSettings

REF = "#/components/schemas/"

DESCRIPTION = """\
Research data export and workflow extraction: batch exports of files converted to
CSV, TSV, JSON, Excel, Parquet or HDF5; history exports and re-imports (Galaxy's
task-based exports); workflows extracted from recorded provenance.

- **Authentication**: every route takes an API key, as `Authorization: Bearer <key>`
  or `X-API-Key: <key>` (Authorize above). No key, or a wrong one: 401.
- **Errors**: a 4xx or 5xx status with `{"detail": ...}`. An object that does not
  exist and one that is not yours both answer 404.
- **Rate limits** per key and route class (read, create, upload): every answer
  carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF draft);
  over the limit is 429 with `Retry-After`.
- **Quotas** per user (stored bytes, running exports, files per export):
  `GET /api/users/me/usage`; over a quota is 413, 429 or 422 naming the quota and by
  how much.
- **Lists** take `limit` and `offset` and answer a JSON array: the total is in
  `X-Total-Count`, the neighbouring pages in `Link` (rel="next", rel="prev").
- **Ids** are integers; times ISO 8601 in UTC.

The guide for people is `docs/API.md` in the repository; this document is
`docs/openapi.json` there.
"""

TAGS: list[dict[str, str]] = [
    {
        "name": "users",
        "description": "Who you are, your API keys and your usage; administrators create "
        "users, list and revoke anyone's keys and set quotas.",
    },
    {
        "name": "catalog",
        "description": "Projects and files: uploads stream to storage, with size, "
        "sha256 and detected format.",
    },
    {
        "name": "histories and provenance",
        "description": "Galaxy-like histories, their datasets and collections, and the "
        "tool runs (jobs) that made them.",
    },
    {
        "name": "data export",
        "description": "Batch exports (the seed's Data Export API): files converted and "
        "packed, with progress, per-file results and signed download links.",
    },
    {
        "name": "history exports",
        "description": "A whole history as an archive, for short-term download or written "
        "to a long-term location; tracked, reused while valid, re-importable.",
    },
    {"name": "tasks", "description": "Any asynchronous task's state and result, by its id."},
    {
        "name": "workflows",
        "description": "Workflows extracted from the provenance of datasets, collections "
        "and jobs, as Galaxy .ga or gxformat2 documents.",
    },
    {
        "name": "service accounts",
        "description": "For administrators: the systems that publish commands straight to "
        "the broker, each as its own AMQP user, and whom each may act for.",
    },
    {
        "name": "webhooks",
        "description": "Subscriptions to your tasks' events (completed, failed, cancelled, "
        "expired, progress), delivered as signed POSTs (Standard Webhooks) and retried with "
        "backoff; each subscription's delivery log.",
    },
    {
        "name": "administration",
        "description": "For administrators: messages the services refused (dead letters), "
        "and replaying them.",
    },
]


@dataclass(frozen=True)
class Makes:
    """What a create's answer holds, and where it goes: `ids` fills the parameters of
    that name in every route under `under`; `bodies` fills request bodies (merged into
    what the client sends)."""

    method: str
    path: str
    ids: dict[str, str] = field(default_factory=dict)  # parameter -> runtime expression
    under: str = "/"
    bodies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _id(pointer: str = "/id") -> str:
    return f"$response.body#{pointer}"


# Link bodies use only what the link gives (the other id lists empty), so that the
# request stands or falls with the linked id alone.


def _export(**ids: Any) -> dict[str, Any]:
    return {"file_ids": [], "dataset_ids": [], "export_options": None, **ids}


def _extract(**ids: Any) -> dict[str, Any]:
    selected = ("job_ids", "hda_ids", "hdca_ids", "implicit_collection_jobs_ids")
    names = ("dataset_names", "dataset_collection_names", "output_labels")
    return {**{name: [] for name in (*selected, *names)}, **ids}


EXPORT, EXTRACT = ("post", "/api/data-export/jobs"), ("post", "/api/workflows/extract")
RECORD = ("post", "/api/jobs")
NO_IO: dict[str, Any] = {"inputs": [], "outputs": [], "output_collections": [], "map_over": None}

MAKES: list[Makes] = [
    Makes("post", "/api/projects", {"project_id": _id()}, under="/api/files"),
    Makes(
        "post",
        "/api/files",
        {"file_id": _id()},
        under="/api/files/",
        bodies={EXPORT: _export(file_ids=[_id()])},
    ),
    Makes(
        "post",
        "/api/histories",
        {"history_id": _id()},
        under="/api/histories/{history_id}",
        bodies={RECORD: {**NO_IO, "history_id": _id()}},
    ),
    Makes(
        "post",
        "/api/histories/{history_id}/contents",
        {"dataset_id": _id(), "collection_id": _id(), "history_id": _id("/history_id")},
        bodies={
            EXPORT: _export(dataset_ids=[_id()]),
            EXTRACT: _extract(hda_ids=[_id()]),
        },
    ),
    Makes(
        "post",
        "/api/jobs",
        {"job_id": _id("/jobs/0/id")},
        under="/api/jobs/",
        bodies={EXTRACT: _extract(job_ids=[_id("/jobs/0/id")])},
    ),
    Makes("post", "/api/data-export/jobs", {"job_id": _id()}, under="/api/data-export/jobs/"),
    Makes("post", "/api/service-accounts", {"account_id": _id()}, under="/api/service-accounts/"),
    Makes("post", "/api/users/me/keys", {"key_id": _id()}, under="/api/users/me/keys/"),
    Makes("post", "/api/webhooks", {"webhook_id": _id()}, under="/api/webhooks/"),
    Makes(
        "post",
        "/api/webhooks/{webhook_id}/test",
        {"webhook_id": _id("/webhook_id")},
        under="/api/webhooks/",
    ),
    Makes(
        "post",
        "/api/histories/{history_id}/prepare_store_download",
        {"storage_request_id": _id("/storage_request_id"), "task_id": _id("/task_id")},
        bodies={
            ("post", "/api/histories/from_store_async"): {"store_content_uri": _id("/task_id")}
        },
    ),
    Makes("post", "/api/histories/{history_id}/write_store", {"task_id": _id("/task_id")}),
    Makes("post", "/api/histories/from_store_async", {"task_id": _id("/task_id")}),
    Makes(
        "post",
        "/api/workflows/extract",
        {"task_id": _id("/task_id"), "workflow_id": _id("/workflow_id")},
    ),
    Makes(
        "post",
        "/api/histories/{history_id}/extract_workflow",
        {"task_id": _id("/task_id"), "workflow_id": _id("/workflow_id")},
    ),
]


def complete(document: dict[str, Any], *, remote_prefixes: list[str], max_page_size: int) -> None:
    """Everything this module adds to FastAPI's document, in place."""
    add_links(document)
    describe_export_options(document["components"]["schemas"])
    describe_remote_targets(document["components"]["schemas"], remote_prefixes)
    describe_page_limit(document["paths"], max_page_size)


def describe_page_limit(paths: dict[str, Any], maximum: int) -> None:
    """A list's `limit`: at most this deployment's page size limit."""
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "limit" and parameter["in"] == "query":
                    for branch in parameter["schema"].get("anyOf", [parameter["schema"]]):
                        if branch.get("type") == "integer":
                            branch["maximum"] = maximum


def describe_export_options(schemas: dict[str, Any]) -> None:
    """`export_options` of a batch export: the options of its `export_format`."""
    branches = []
    for export_format in get_args(ExportFormat):
        model = options_model(export_format)
        assert model is not None, export_format
        full = model.model_json_schema(ref_template=REF + "{model}")
        schemas.update(full.pop("$defs", {}))
        schemas.setdefault(model.__name__, full)
        options = {"anyOf": [{"$ref": REF + model.__name__}, {"type": "null"}]}
        branches.append(
            {"properties": {"export_format": {"const": export_format}, "export_options": options}}
        )
    schemas["DataExportCreate"].setdefault("allOf", []).append({"anyOf": branches})


def describe_remote_targets(schemas: dict[str, Any], prefixes: list[str]) -> None:
    """A long-term export's `target_uri`: an object under an allowed prefix, with no
    empty or `..` segment."""
    segment = "[A-Za-z0-9_-][A-Za-z0-9._-]*"
    under = "|".join(re.escape(prefix) for prefix in prefixes)
    target = schemas["WriteStoreRequest"]["properties"]["target_uri"]
    target["pattern"] = f"^(?:{under})(?:{segment}/)*{segment}$"
    target["description"] = f"s3://bucket/key under an allowed prefix: {', '.join(prefixes)}"


def add_links(document: dict[str, Any]) -> None:
    """Add every link of MAKES to the create's success answers, in place."""
    paths: dict[str, dict[str, Any]] = document["paths"]
    for makes in MAKES:
        operation = paths[makes.path][makes.method]
        links = _links(paths, makes)
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                response.setdefault("links", {}).update(links)


def _links(paths: dict[str, dict[str, Any]], makes: Makes) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for path, item in paths.items():
        for method, operation in item.items():
            if (method, path) == (makes.method, makes.path):
                continue
            taken = {p["name"] for p in operation.get("parameters", [])}
            parameters = (
                {name: value for name, value in makes.ids.items() if name in taken}
                if path.startswith(makes.under)
                else {}
            )
            body = makes.bodies.get((method, path))
            if not parameters and body is None:
                continue
            link: dict[str, Any] = {"operationRef": _reference(method, path)}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            links[operation["operationId"]] = link
    return links


def _reference(method: str, path: str) -> str:
    """A JSON pointer to an operation in this document."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def install(app: FastAPI, settings: WaybillSettings) -> None:
    """Build the document once, completed, when it is first asked for."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(
                build(),
                remote_prefixes=settings.allowed_remote_prefixes(),
                max_page_size=settings.max_page_size,
            )
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
