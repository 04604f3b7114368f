"""export create/list/get/watch/download/cancel/delete/stats: batch exports (the seed's
Data Export API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from waybill_cli import download, watch
from waybill_cli.client import Api
from waybill_cli.common import (
    AllOpt,
    ForceOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    connect,
    ids,
    key_values,
)
from waybill_cli.display import (
    ExportBoard,
    Output,
    Transfers,
    file_label,
    human_size,
    percent,
    when,
)
from waybill_cli.errors import CliError, ExitCode, usage_error

export_app = typer.Typer(
    help="Batch exports: many files converted and packed, with live progress.",
    no_args_is_help=True,
)

JOB_COLUMNS = ("id", "name", "format", "status", "progress", "files", "size", "created")


def job_row(job: dict[str, Any]) -> list[Any]:
    files = f"{job['processed_files']}/{job['total_files']}"
    if job.get("failed_files"):
        files += f" ({job['failed_files']} failed)"
    return [
        job["id"],
        job["name"],
        job["export_format"],
        job["status"],
        f"{percent(job)}%",
        files,
        human_size(job.get("output_size")),
        when(job["created_at"]),
    ]


@export_app.command("create")
def create(
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="csv, tsv, json, excel, parquet, hdf5, arrow, orc, avro, netcdf, or zip (the "
            "files as they are, packed).",
            show_default=False,
        ),
    ],
    file_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--file", metavar="ID", help="File ids: repeat, or comma-separate.", show_default=False
        ),
    ] = None,
    dataset_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", metavar="ID", help="History dataset ids: repeat, or comma-separate."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The job's name.")] = None,
    description: Annotated[str | None, typer.Option(help="What the export is for.")] = None,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="KEY=VALUE",
            help="A format option KEY=VALUE; repeat. Values read as JSON when they are JSON "
            '(row_group_size=10000, include_header=false, columns=\'["a","b"]\'), '
            "otherwise as text (delimiter=';', compression=zstd). Rows: "
            'filter=\'[{"column":"padj","op":"<","value":0.05}]\' (docs/EXPORT-OPTIONS.md).',
        ),
    ] = None,
    metadata: Annotated[
        bool, typer.Option(help="Include export_metadata.json in the package.")
    ] = True,
    lineage: Annotated[
        bool, typer.Option("--lineage", help="Add the provenance of each file to the metadata.")
    ] = False,
    compress: Annotated[
        bool,
        typer.Option(help="Pack into one ZIP; --no-compress gives each file its own download."),
    ] = True,
    ttl: Annotated[
        int,
        typer.Option(min=1, max=168, metavar="HOURS", help="Hours the download stays available."),
    ] = 48,
    job_key: Annotated[
        str | None,
        typer.Option(help="Your idempotency key: the same key answers the same job."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the job to its end (a bar for the job and each file); "
            "exit 1 unless it completes.",
        ),
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Create a batch export of files and history datasets.

    Example: `waybill export create --format parquet --file 3,4 --option compression=zstd --wait`
    """
    out = Output(json_mode=json_mode)
    files, datasets = ids(file_ids, "--file"), ids(dataset_ids, "--dataset")
    if not files and not datasets:
        raise usage_error("give at least one --file or --dataset")
    body: dict[str, Any] = {
        "name": name or f"{export_format} export",
        "file_ids": files,
        "export_format": export_format,
        "export_options": key_values(options or [], "--option"),
        "include_metadata": metadata,
        "include_lineage": lineage,
        "compress": compress,
        "ttl_hours": ttl,
    }
    if datasets:
        body["dataset_ids"] = datasets
    if description is not None:
        body["description"] = description
    if job_key is not None:
        body["job_key"] = job_key
    with connect() as api:
        job = api.create_export(body)
        if not wait:
            out.result(
                job,
                lambda: out.say(
                    f"export {job['id']} created ({job['status']}); "
                    f"follow it with `waybill export watch {job['id']}`"
                ),
            )
            return
        (done,) = follow(api, out, [job["id"]])
    out.result(done, lambda: summarize(out, done))
    raise_unless_completed([done])


def follow(api: Api, out: Output, job_ids: list[int]) -> list[dict[str, Any]]:
    """Watch the jobs to their terminal states; returns them in the order given."""
    final: dict[int, dict[str, Any]] = {}
    try:
        with ExportBoard(out) as board:
            for _, job in watch.watch(api, [watch.export_job(api, i) for i in job_ids]):
                board.show(job)
                final[job["id"]] = job
    except KeyboardInterrupt:
        raise CliError(
            "interrupted; the export goes on: `waybill export watch "
            + " ".join(map(str, job_ids))
            + "`",
            ExitCode.INTERRUPTED,
        ) from None
    return [final[i] for i in job_ids]


def summarize(out: Output, job: dict[str, Any]) -> None:
    status = job["status"]
    if status == "completed":
        size = human_size(job.get("output_size"))
        out.say(
            f"export {job['id']} completed: {job['processed_files']} file(s), {size}, "
            f"available until {when(job.get('expires_at'))}; "
            f"`waybill export download {job['id']}` saves it"
        )
    else:
        reason = f": {job['error_message']}" if job.get("error_message") else ""
        out.say(f"export {job['id']} {status}{reason}")
    for entry in job.get("files") or []:
        if entry.get("error"):
            out.say(f"  {file_label(entry)} failed: {entry['error']}")


def raise_unless_completed(jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        if job["status"] != "completed":
            reason = f": {job['error_message']}" if job.get("error_message") else ""
            raise CliError(f"export {job['id']} {job['status']}{reason}", ExitCode.FAILED)


@export_app.command("watch")
def watch_jobs(
    job_ids: Annotated[list[int], typer.Argument(help="Export job ids.", show_default=False)],
    json_mode: JsonOpt = False,
) -> None:
    """Follow running exports to their end, with a bar per job and per file; exit 1
    unless every one completes. --json prints the final jobs as a JSON array."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        jobs = follow(api, out, job_ids)

    def human() -> None:
        for job in jobs:
            summarize(out, job)

    out.result(jobs, human)
    raise_unless_completed(jobs)


@export_app.command("list")
def list_jobs(
    status: Annotated[
        str | None,
        typer.Option(help="pending, processing, completed, failed, cancelled or expired."),
    ] = None,
    export_format: Annotated[str | None, typer.Option("--format", help="Only this format.")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    all_items: AllOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List your export jobs, newest first."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        page = api.exports(
            status=status,
            export_format=export_format,
            limit=limit,
            offset=offset,
            every=all_items,
        )
    out.result(
        page.items,
        lambda: out.page(
            JOB_COLUMNS, [job_row(j) for j in page.items], total=page.total, offset=offset
        ),
    )


@export_app.command("get")
def get_job(job_id: int, json_mode: JsonOpt = False) -> None:
    """Show one export job: status, progress, each file, the download's expiry."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        job = api.export(job_id)

    def human() -> None:
        out.table(JOB_COLUMNS, [job_row(job)])
        options = job.get("export_options") or {}
        if options:
            out.say(f"options {options}")
        if job.get("expires_at"):
            out.say(f"expires {when(job['expires_at'])}")
        if job.get("error_message"):
            out.say(f"error {job['error_message']}")
        out.table(
            ("file", "status", "output", "size", "error"),
            (
                [
                    file_label(f),
                    f["status"],
                    f.get("output_name"),
                    human_size(f.get("size")),
                    f.get("error"),
                ]
                for f in job.get("files") or []
            ),
        )

    out.result(job, human)


@export_app.command("download")
def download_job(
    job_id: int,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="A file or directory (default: the server's file name, here); - is stdout. "
            "An export with --no-compress and several files saves each into the directory.",
        ),
    ] = None,
    force: ForceOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Download a completed export."""
    out = Output(json_mode=json_mode)
    if json_mode and output == download.STDOUT:
        raise usage_error("--json and -o - both write to stdout: choose one")
    with connect() as api:
        job = api.export(job_id)
        links = downloads(job)
        if len(links) > 1:
            if output == download.STDOUT:
                raise usage_error(f"export {job_id} has {len(links)} files: -o must be a directory")
            directory = Path(output or ".")
            directory.mkdir(parents=True, exist_ok=True)
            output = f"{directory}/"
        saved: list[dict[str, Any]] = []
        with Transfers(out) as transfers:
            for url, fallback in links:
                with api.download_signed(url) as response:
                    path = download.target(output, download.suggested_name(response, fallback))
                    size = int(response.headers.get("content-length", 0)) or None
                    advance = transfers.add(f"downloading {path or 'to stdout'}", size)
                    written = download.save(response, path, force=force, on_bytes=advance)
                saved.append({"path": str(path) if path else None, "size": written})
    if output == download.STDOUT:
        return

    def human() -> None:
        for item in saved:
            out.say(f"saved {item['path']} ({human_size(item['size'])})")

    out.result({"job_id": job_id, "files": saved}, human)


def downloads(job: dict[str, Any]) -> list[tuple[str, str]]:
    """(signed URL, fallback file name) of each artifact: the package, or with
    compress=false and several files, each file."""
    if job["status"] != "completed":
        running = job["status"] in ("pending", "processing")
        hint = f": `waybill export watch {job['id']}` follows it" if running else ""
        raise CliError(f"export {job['id']} is {job['status']}, nothing to download{hint}")
    if job.get("download_url"):
        fallback = f"export-{job['id']}.zip" if job.get("compress") else f"export-{job['id']}"
        return [(job["download_url"], fallback)]
    links = [
        (f["download_url"], f.get("output_name") or file_label(f))
        for f in job.get("files") or []
        if f.get("download_url")
    ]
    if not links:
        raise CliError(f"export {job['id']} has no download link (has it expired?)")
    return links


@export_app.command("cancel")
def cancel(job_id: int, json_mode: JsonOpt = False) -> None:
    """Cancel a pending or running export: no worker starts it, or the worker stops
    within seconds and removes what it made."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        answer = api.cancel_export(job_id)
    out.result(answer, lambda: out.say(answer.get("message") or f"export {job_id} cancelled"))


@export_app.command("delete")
def delete(job_id: int, json_mode: JsonOpt = False) -> None:
    """Delete an export and its download (cancelling it first if it runs)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        api.delete_export(job_id)
    out.result({"job_id": job_id, "deleted": True}, lambda: out.say(f"export {job_id} deleted"))


@export_app.command("stats")
def stats(json_mode: JsonOpt = False) -> None:
    """Totals of your exports: by status, by format, bytes and files exported."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        data = api.export_statistics()

    def human() -> None:
        out.say(
            f"{data['total_jobs']} export(s), {data['total_files_exported']} file(s) exported, "
            f"{human_size(data['total_size_bytes'])}"
        )
        out.table(("status", "jobs"), sorted(data["by_status"].items()))
        out.table(("format", "jobs"), sorted(data["by_format"].items()))

    out.result(data, human)
