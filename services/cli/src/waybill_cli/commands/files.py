"""upload, file list/get/download, project list/create: the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from waybill_cli import download
from waybill_cli.common import (
    AllOpt,
    ForceOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    connect,
    json_object,
)
from waybill_cli.display import Output, Transfers, human_size, when
from waybill_cli.errors import CliError, usage_error

file_app = typer.Typer(
    help="Files in the catalog (upload them with `waybill upload`).", no_args_is_help=True
)
project_app = typer.Typer(help="Projects, which group files.", no_args_is_help=True)

FILE_COLUMNS = ("id", "filename", "size", "format", "project", "uploaded")
ProjectOpt = Annotated[int | None, typer.Option("--project", help="A project id.")]


def file_row(f: dict[str, Any]) -> list[Any]:
    return [
        f["id"],
        f["filename"],
        human_size(f["size"]),
        f["format"],
        f.get("project_id"),
        when(f["uploaded_at"]),
    ]


def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files to upload; each is streamed, never read whole.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    project: ProjectOpt = None,
    metadata: Annotated[
        str | None,
        typer.Option(help='A JSON object stored with each file, e.g. \'{"organism": "human"}\'.'),
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Upload files to the catalog, with a progress bar per file.

    Prints the stored files (id, size, detected format); `--json` prints them as a
    JSON array."""
    out = Output(json_mode=json_mode)
    meta = json_object(metadata, "--metadata") if metadata is not None else None
    uploaded: list[dict[str, Any]] = []
    with connect() as api, Transfers(out) as transfers:
        for path in paths:
            advance = transfers.add(f"uploading {path.name}", path.stat().st_size)
            try:
                uploaded.append(
                    api.upload(path, project_id=project, metadata=meta, on_bytes=advance)
                )
            except CliError as e:
                done = ", ".join(str(f["id"]) for f in uploaded)
                before = f" (uploaded before it: file {done})" if done else ""
                raise CliError(f"{path}: {e.message}{before}", e.code) from e
    out.result(uploaded, lambda: out.table(FILE_COLUMNS, map(file_row, uploaded)))


@file_app.command("list")
def list_files(
    project: ProjectOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    all_items: AllOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List your files."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        page = api.files(project_id=project, limit=limit, offset=offset, every=all_items)
    out.result(
        page.items,
        lambda: out.page(
            FILE_COLUMNS, [file_row(f) for f in page.items], total=page.total, offset=offset
        ),
    )


@file_app.command("get")
def get_file(file_id: int, json_mode: JsonOpt = False) -> None:
    """Show one file: size, checksum, detected format, metadata."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        f = api.file(file_id)

    def human() -> None:
        out.table(FILE_COLUMNS, [file_row(f)])
        out.say(f"sha256 {f['sha256']}")
        if f.get("metadata"):
            out.say(f"metadata {f['metadata']}")

    out.result(f, human)


@file_app.command("download")
def download_file(
    file_id: int,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="A file or directory (default: its name, here); - is stdout."
        ),
    ] = None,
    force: ForceOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Download a file's content as it was uploaded."""
    out = Output(json_mode=json_mode)
    if json_mode and output == download.STDOUT:
        raise usage_error("--json and -o - both write to stdout: choose one")
    with connect() as api, api.download(api.file_content_path(file_id)) as response:
        path = download.target(output, download.suggested_name(response, f"file-{file_id}"))
        size = int(response.headers.get("content-length", 0)) or None
        with Transfers(out) as transfers:
            advance = transfers.add(f"downloading {path or 'to stdout'}", size)
            written = download.save(response, path, force=force, on_bytes=advance)
    if path is not None:
        out.result(
            {"file_id": file_id, "path": str(path), "size": written},
            lambda: out.say(f"saved {path} ({human_size(written)})"),
        )


@project_app.command("list")
def list_projects(json_mode: JsonOpt = False) -> None:
    """List your projects."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        projects = api.projects()
    out.result(
        projects,
        lambda: out.table(
            ("id", "name", "description", "created"),
            ([p["id"], p["name"], p.get("description"), when(p["created_at"])] for p in projects),
        ),
    )


@project_app.command("create")
def create_project(
    name: str,
    description: Annotated[str | None, typer.Option(help="What the project holds.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Create a project; upload into it with `waybill upload --project ID`."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        project = api.create_project(name, description)
    out.result(project, lambda: out.say(f"project {project['id']} {project['name']} created"))
