"""The OpenAPI document: committed as docs/openapi.json and equal to what the code
generates; security schemes for Swagger's Authorize; every tag described; examples on
the request bodies; links from every create to the routes that take what it made, each
one resolvable. Built in-process: no server needed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ("get", "post", "put", "patch", "delete")


@cache
def document() -> dict[str, Any]:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "openapi.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated == (ROOT / "docs" / "openapi.json").read_text(), (
        "docs/openapi.json is stale: run `make openapi`"
    )
    loaded: dict[str, Any] = json.loads(generated)
    return loaded


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in OPERATIONS
    ]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_committed_document_matches_the_code() -> None:
    assert document()["openapi"].startswith("3.1")
    assert "See API.md" not in document()["info"]["description"]


def test_both_api_key_headers_are_security_schemes() -> None:
    schemes = document()["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearer"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes[
        "apiKey"
    ].items()
    for method, path, operation in operations():
        assert operation.get("security") == [{"bearer": []}, {"apiKey": []}], (method, path)
        # The key is a security scheme, not a parameter of its own.
        assert not {p["name"].lower() for p in operation.get("parameters", [])} & {
            "authorization",
            "x-api-key",
        }, (method, path)


def test_every_tag_is_described() -> None:
    described = {tag["name"]: tag.get("description", "") for tag in document()["tags"]}
    used = {tag for _, _, operation in operations() for tag in operation.get("tags", [])}
    assert all(operation.get("tags") for _, _, operation in operations())
    assert used == set(described)
    assert all(len(text) > 20 for text in described.values()), described


def test_request_bodies_have_examples() -> None:
    for method, path, operation in operations():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None or path == "/api/admin/dead-letters/replay":
            continue
        examples = resolve(body["schema"]).get("examples")
        assert examples, f"{method.upper()} {path}: no example"


# What each create makes, and a route that must receive it through a link.
CREATES = {
    ("post", "/api/projects"): ("get", "/api/files", "project_id"),
    ("post", "/api/files"): ("get", "/api/files/{file_id}", "file_id"),
    ("post", "/api/histories"): ("post", "/api/histories/{history_id}/contents", "history_id"),
    ("post", "/api/histories/{history_id}/contents"): (
        "get",
        "/api/datasets/{dataset_id}",
        "dataset_id",
    ),
    ("post", "/api/jobs"): ("get", "/api/jobs/{job_id}", "job_id"),
    ("post", "/api/data-export/jobs"): ("delete", "/api/data-export/jobs/{job_id}", "job_id"),
    ("post", "/api/users/me/keys"): ("delete", "/api/users/me/keys/{key_id}", "key_id"),
    ("post", "/api/service-accounts"): (
        "delete",
        "/api/service-accounts/{account_id}",
        "account_id",
    ),
    ("post", "/api/histories/{history_id}/prepare_store_download"): (
        "get",
        "/api/short_term_storage/{storage_request_id}",
        "storage_request_id",
    ),
    ("post", "/api/histories/{history_id}/write_store"): (
        "get",
        "/api/tasks/{task_id}/state",
        "task_id",
    ),
    ("post", "/api/histories/from_store_async"): ("get", "/api/tasks/{task_id}/result", "task_id"),
    ("post", "/api/webhooks"): ("delete", "/api/webhooks/{webhook_id}", "webhook_id"),
    ("post", "/api/webhooks/{webhook_id}/test"): (
        "get",
        "/api/webhooks/{webhook_id}/deliveries",
        "webhook_id",
    ),
    ("post", "/api/workflows/extract"): ("get", "/api/workflows/{workflow_id}", "workflow_id"),
    ("post", "/api/histories/{history_id}/extract_workflow"): (
        "get",
        "/api/workflows/{workflow_id}/download",
        "workflow_id",
    ),
}


def links_of(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            found |= response.get("links", {})
    return found


def target(link: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    pointer = link["operationRef"]
    match = re.fullmatch(r"#/paths/(.+)/(get|post|put|patch|delete)", pointer)
    assert match, pointer
    path = match.group(1).replace("~1", "/").replace("~0", "~")
    return match.group(2), path, document()["paths"][path][match.group(2)]


def test_every_create_links_to_the_routes_using_what_it_made() -> None:
    paths = document()["paths"]
    creates = {
        (method, path)
        for method, path, operation in operations()
        if method == "post" and {"201", "202"} & set(operation["responses"])
    }
    assert creates - {("post", "/api/users")} == set(CREATES)
    for (method, path), (to_method, to_path, parameter) in CREATES.items():
        links = links_of(paths[path][method])
        into = [
            link
            for link in links.values()
            if target(link)[:2] == (to_method, to_path) and parameter in link.get("parameters", {})
        ]
        assert into, f"{method.upper()} {path} has no link giving {parameter} to {to_path}"


def pointer_exists(schema: dict[str, Any], pointer: str) -> bool:
    node = resolve(schema)
    for part in [p for p in pointer.split("/") if p]:
        if part.isdigit():
            node = resolve(node.get("items", {}))
        else:
            options = [resolve(s) for s in node.get("anyOf", [node])]
            found = [o["properties"][part] for o in options if part in o.get("properties", {})]
            if not found:
                return False
            node = resolve(found[0])
    return True


@pytest.mark.parametrize(("method", "path"), sorted(CREATES))
def test_links_resolve(method: str, path: str) -> None:
    """Every link names a real operation and real parameters of it, and takes its
    values from fields the create's answer has."""
    operation = document()["paths"][path][method]
    for status, response in operation["responses"].items():
        for name, link in response.get("links", {}).items():
            _, to_path, to_operation = target(link)
            taken = {p["name"] for p in to_operation.get("parameters", [])}
            assert set(link.get("parameters", {})) <= taken, (name, to_path)
            schema = response["content"]["application/json"]["schema"]
            expressions = [*link.get("parameters", {}).values(), *_strings(link.get("requestBody"))]
            for expression in expressions:
                if expression.startswith("$response.body#"):
                    pointer = expression.removeprefix("$response.body#")
                    assert pointer_exists(schema, pointer), (status, name, expression)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_request_schemas_say_what_the_validation_does() -> None:
    schemas = document()["components"]["schemas"]
    create = schemas["DataExportCreate"]
    assert {"required": ["file_ids"], "properties": {"file_ids": {"minItems": 1}}} in create[
        "anyOf"
    ]
    assert create["properties"]["file_ids"]["uniqueItems"] is True
    by_format = {
        branch["properties"]["export_format"]["const"]: branch["properties"]["export_options"]
        for branch in create["allOf"][0]["anyOf"]
    }
    assert by_format["parquet"]["anyOf"][0] == {"$ref": "#/components/schemas/ParquetOptions"}
    assert set(by_format) == set(create["properties"]["export_format"]["enum"])
    assert len(schemas["NewContent"]["anyOf"]) == 2
    for name in ("ExtractWorkflowRequest", "LegacyExtractRequest"):
        assert schemas[name]["anyOf"], name
    importing = schemas["FromStoreRequest"]
    assert importing["required"] == ["store_content_uri"]
    assert importing["properties"]["store_dict"] == {"type": "null", "description": ANY}
    assert "bco.json" not in importing["properties"]["model_store_format"]["anyOf"][0]["enum"]
    for _, path, operation in operations():
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "limit":
                assert parameter["schema"]["anyOf"][0]["maximum"] == 500, path
    target_uri = schemas["WriteStoreRequest"]["properties"]["target_uri"]
    assert re.fullmatch(target_uri["pattern"], "s3://waybill/remote/a/b.tar.gz")
    for bad in (
        "s3://elsewhere/remote/a.tar.gz",
        "s3://waybill/remote/a/",
        "s3://waybill/remote/../x",
    ):
        assert not re.fullmatch(target_uri["pattern"], bad), bad
