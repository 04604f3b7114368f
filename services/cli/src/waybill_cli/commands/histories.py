"""history list/contents/summary/export/exports/import: histories and their archives
(Galaxy's task-based export and import)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from waybill_cli import download, watch
from waybill_cli.client import Api
from waybill_cli.common import AllOpt, ForceOpt, JsonOpt, LimitOpt, OffsetOpt, connect
from waybill_cli.display import Output, TaskBoard, Transfers, human_size, when
from waybill_cli.errors import CliError, ExitCode, usage_error
from waybill_cli.extraction import summary_inputs, summary_selection

history_app = typer.Typer(
    help="Histories: their contents, their export as archives, and re-import.",
    no_args_is_help=True,
)

WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Wait for the task to end; exit 1 if it fails.")
]


def follow_task(api: Api, out: Output, task_id: str, label: str) -> dict[str, Any]:
    """Wait for a task (a spinner, or a line per state); returns its result, which
    carries its state and error."""
    try:
        with TaskBoard(out) as board:
            for _, snapshot in watch.watch(api, [watch.task(api, task_id)]):
                board.show(label, snapshot["state"])
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted; task {task_id} goes on on the server", ExitCode.INTERRUPTED
        ) from None
    return api.task_result(task_id)


def raise_if_failed(result: dict[str, Any], what: str) -> None:
    if result.get("state") != "SUCCESS":
        reason = f": {result['error']}" if result.get("error") else ""
        raise CliError(f"{what} {result.get('status') or 'failed'}{reason}", ExitCode.FAILED)


@history_app.command("list")
def list_histories(
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    all_items: AllOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List your histories."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        page = api.histories(limit=limit, offset=offset, every=all_items)
    rows = [
        [h["id"], h["name"], when(h["update_time"]), when(h["create_time"])] for h in page.items
    ]
    out.result(
        page.items,
        lambda: out.page(
            ("id", "name", "updated", "created"), rows, total=page.total, offset=offset
        ),
    )


@history_app.command("contents")
def contents(history_id: int, json_mode: JsonOpt = False) -> None:
    """The datasets and collections of a history (with their ids for export and extract)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        items = api.history_contents(history_id)
    out.result(
        items,
        lambda: out.table(
            ("hid", "id", "type", "name", "kind", "state"),
            (
                [
                    i["hid"],
                    i["id"],
                    "collection"
                    if i["history_content_type"] == "dataset_collection"
                    else "dataset",
                    i["name"],
                    i.get("extension") or i.get("collection_type"),
                    i["state"],
                ]
                for i in items
            ),
        ),
    )


@history_app.command("summary")
def summary(history_id: int, json_mode: JsonOpt = False) -> None:
    """What `waybill extract` can take from a history: its jobs (and mapped runs) and
    its inputs, with the ids to pass to --job, --mapped-run, --hda and --hdca."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        data = api.extraction_summary(history_id)
    selection = summary_selection(data)

    def human() -> None:
        rows = [["--job", i, "tool run", "", ""] for i in selection.job_ids] + [
            ["--mapped-run", i, "mapped tool run", "", ""] for i in selection.group_ids
        ]
        for entry in summary_inputs(data):
            option = "--hdca" if entry["history_content_type"] == "dataset_collection" else "--hda"
            rows.append([option, entry["id"], "input", entry.get("hid"), entry.get("name")])
        out.table(("option", "id", "what", "hid", "name"), rows)

    out.result(data, human)


@history_app.command("export")
def export_history(
    history_id: int,
    model_store_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="The archive: rocrate.zip, tar.gz, or another format the gateway offers.",
        ),
    ] = "rocrate.zip",
    include_files: Annotated[
        bool, typer.Option("--files/--no-files", help="Include the datasets' bytes.")
    ] = True,
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="Include hidden datasets.")
    ] = False,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="Include deleted datasets.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            help="Write the archive to this remote location (an s3:// URI the deployment "
            "allows) instead of a short-term download."
        ),
    ] = None,
    wait: WaitOpt = False,
    save: Annotated[
        str | None,
        typer.Option(help="Save the archive to this file or directory (implies --wait)."),
    ] = None,
    force: ForceOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Export a history as an archive that `waybill history import` (or Galaxy) reads back.

    An unchanged history exported again with the same options reuses the earlier
    archive while it lives.

    Example: `waybill history export 7 --format rocrate.zip --save history-7.rocrate.zip`
    """
    out = Output(json_mode=json_mode)
    if to and save:
        raise usage_error("--to writes the archive remotely; --save downloads it: choose one")
    if save == download.STDOUT:
        raise usage_error("--save needs a file or directory")
    options: dict[str, Any] = {
        "model_store_format": model_store_format,
        "include_files": include_files,
        "include_hidden": include_hidden,
        "include_deleted": include_deleted,
    }
    with connect() as api:
        if to:
            answer = api.write_store(history_id, options | {"target_uri": to})
        else:
            answer = api.prepare_store_download(history_id, options)
        data: dict[str, Any] = {"history_id": history_id, **answer}
        if wait or save:
            result = follow_task(
                api, out, answer["task_id"], f"history {history_id} export ({model_store_format})"
            )
            data |= {"state": result.get("state"), "error": result.get("error")}
            if result.get("uri"):
                data["uri"] = result["uri"]
            if result.get("state") == "SUCCESS" and save:
                data |= _save_archive(api, out, answer["storage_request_id"], save, force)
    out.result(data, lambda: _show_export(out, data))
    if "state" in data:
        raise_if_failed(data, f"history {history_id} export")


def _save_archive(
    api: Api, out: Output, storage_request_id: str, save: str, force: bool
) -> dict[str, Any]:
    url = api.short_term_url(storage_request_id)
    with Transfers(out) as transfers, api.download_signed(url) as response:
        path = download.target(
            save, download.suggested_name(response, f"history-{storage_request_id}")
        )
        assert path is not None  # --save - is refused above
        size = int(response.headers.get("content-length", 0)) or None
        written = download.save(
            response, path, force=force, on_bytes=transfers.add(f"downloading {path}", size)
        )
    return {"path": str(path), "size": written}


def _show_export(out: Output, data: dict[str, Any]) -> None:
    reused = " (reusing an earlier archive)" if data.get("reused") else ""
    out.say(f"history {data['history_id']} export: task {data['task_id']}{reused}")
    if data.get("state"):
        out.say(f"state {data['state']}")
    if data.get("uri"):
        out.say(f"archive {data['uri']}")
    if data.get("path"):
        out.say(f"saved {data['path']} ({human_size(data.get('size'))})")
    if "state" not in data:
        out.say(f"re-import it once done: waybill history import {data['task_id']} --wait")


@history_app.command("exports")
def exports(history_id: int, json_mode: JsonOpt = False) -> None:
    """Earlier exports of a history, newest first: ready, preparing, up to date, failed."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        records = api.history_exports(history_id)

    def state(r: dict[str, Any]) -> str:
        flags = [
            name
            for name, on in (
                ("ready", r.get("ready")),
                ("preparing", r.get("preparing")),
                ("up to date", r.get("up_to_date")),
                ("failed", r.get("has_failed")),
                ("expired", r.get("expired")),
            )
            if on
        ]
        return ", ".join(flags)

    def human() -> None:
        out.table(
            ("id", "task", "created", "state", "uri"),
            (
                [
                    r["id"],
                    r["task_uuid"],
                    when(r["create_time"]),
                    state(r),
                    ((r.get("export_metadata") or {}).get("result_data") or {}).get("uri"),
                ]
                for r in records
            ),
        )

    out.result(records, human)


@history_app.command("import")
def import_history(
    uri: Annotated[
        str,
        typer.Argument(
            help="What to import: an export's task id, its record id, or its s3:// URI.",
            show_default=False,
        ),
    ],
    wait: WaitOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Import an exported history as a new history (datasets, collections and jobs)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        answer = api.import_history(uri)
        data: dict[str, Any] = {"task_id": answer["task_id"]}
        if wait:
            result = follow_task(api, out, answer["task_id"], "history import")
            data |= {
                "state": result.get("state"),
                "history_id": result.get("history_id"),
                "error": result.get("error"),
            }

    def human() -> None:
        if data.get("history_id"):
            out.say(f"imported as history {data['history_id']}")
        elif not wait:
            out.say(f"import started: task {data['task_id']}")

    out.result(data, human)
    if wait:
        raise_if_failed(data, "history import")
