"""extract and workflow download: workflows rebuilt from provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from waybill_cli import download
from waybill_cli.client import Api
from waybill_cli.commands.histories import follow_task
from waybill_cli.common import ForceOpt, JsonOpt, connect, ids
from waybill_cli.display import Output, Transfers, human_size
from waybill_cli.errors import CliError, usage_error
from waybill_cli.extraction import Selection, request_body, summary_selection, workflow_id

workflow_app = typer.Typer(help="Extracted workflows.", no_args_is_help=True)

# The gateway answers at once when the extraction is done within this; else the CLI follows the task.
PREFER_WAIT_SECONDS = 20
IdsOpt = Annotated[list[str] | None, typer.Option(show_default=False)]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="ga (Galaxy's JSON) or format2 (gxformat2 YAML); by default from the file's "
        "suffix (.yml/.yaml: format2), else ga.",
    ),
]


def extract(
    history: Annotated[
        int | None,
        typer.Option(
            help="The history; alone, everything its summary lists (`waybill history summary`)."
        ),
    ] = None,
    job: Annotated[
        list[str] | None, typer.Option(metavar="ID", help="Job ids; repeat or comma-separate.")
    ] = None,
    mapped_run: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID", help="Mapped-over runs, by their group id (implicit_collection_jobs_id)."
        ),
    ] = None,
    hda: Annotated[list[str] | None, typer.Option(metavar="ID", help="Input dataset ids.")] = None,
    hdca: Annotated[
        list[str] | None, typer.Option(metavar="ID", help="Input collection ids.")
    ] = None,
    input_name: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="Names of the input datasets, in the order of --hda; repeat."
        ),
    ] = None,
    collection_name: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="Names of the input collections, in the order of --hdca; repeat."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The workflow's name.")] = None,
    save: Annotated[
        str | None,
        typer.Option(
            metavar="PATH", help="Save the workflow document here (a .ga or .gxwf.yml file)."
        ),
    ] = None,
    workflow_format: FormatOpt = None,
    force: ForceOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Extract a workflow from jobs and inputs (one history or several) and save it.

    Examples:

    * `waybill extract --history 4 --save analysis.ga`
    * `waybill extract --job 12,13 --hda 5,9 --input-name reads --input-name reference --save w.ga`
    """
    out = Output(json_mode=json_mode)
    if save == download.STDOUT and json_mode:
        raise usage_error("--json and --save - both write to stdout: choose one")
    selection = Selection(
        job_ids=ids(job, "--job"),
        group_ids=ids(mapped_run, "--mapped-run"),
        hda_ids=ids(hda, "--hda"),
        hdca_ids=ids(hdca, "--hdca"),
    )
    if not selection and history is None:
        raise usage_error("give --history, or the --job/--mapped-run/--hda/--hdca ids to extract")
    with connect() as api:
        if not selection:
            assert history is not None
            selection = summary_selection(api.extraction_summary(history))
        body = request_body(
            selection,
            history_id=history,
            workflow_name=name,
            dataset_names=input_name or [],
            collection_names=collection_name or [],
        )
        answer = api.extract_workflow(body, wait_seconds=PREFER_WAIT_SECONDS)
        if workflow_id(answer) is None and answer.get("status") not in ("failed", "cancelled"):
            answer |= follow_task(api, out, answer["task_id"], "workflow extraction")
        made = workflow_id(answer)
        if made is None:
            error = answer.get("error") or "no workflow was made"
            raise CliError(f"extraction {answer.get('status') or 'failed'}: {error}")
        data: dict[str, Any] = {
            "task_id": answer["task_id"],
            "status": answer.get("status"),
            "workflow_id": made,
        }
        if save is not None:
            data |= save_workflow(api, out, made, save, workflow_format, force)

    def human() -> None:
        out.say(f"workflow {made} extracted")
        if data.get("path"):
            out.say(f"saved {data['path']} ({data['format']}, {human_size(data['size'])})")
        elif save is None:
            out.say(f"save it with `waybill workflow download {made} -o workflow.ga`")

    if save != download.STDOUT:
        out.result(data, human)


def save_workflow(
    api: Api,
    out: Output,
    workflow_id: int,
    output: str,
    workflow_format: str | None,
    force: bool,
) -> dict[str, Any]:
    fmt = workflow_format or (
        "format2" if Path(output).suffix.lower() in (".yml", ".yaml") else "ga"
    )
    if fmt not in ("ga", "format2"):
        raise usage_error(f"--format {fmt!r}: ga or format2")
    with api.download(api.workflow_download_path(workflow_id, fmt)) as response:
        fallback = f"workflow-{workflow_id}." + ("ga" if fmt == "ga" else "gxwf.yml")
        path = download.target(output, download.suggested_name(response, fallback))
        size = int(response.headers.get("content-length", 0)) or None
        with Transfers(out) as transfers:
            advance = transfers.add(f"downloading {path or 'to stdout'}", size)
            written = download.save(response, path, force=force, on_bytes=advance)
    return {"path": str(path) if path else None, "format": fmt, "size": written}


@workflow_app.command("download")
def download_workflow(
    workflow_id: int,
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="A file or directory; - is stdout."),
    ] = ".",
    workflow_format: FormatOpt = None,
    force: ForceOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """Download an extracted workflow as Galaxy .ga JSON or gxformat2."""
    out = Output(json_mode=json_mode)
    if output == download.STDOUT and json_mode:
        raise usage_error("--json and -o - both write to stdout: choose one")
    with connect() as api:
        data = save_workflow(api, out, workflow_id, output, workflow_format, force)
    if output != download.STDOUT:
        out.result(
            {"workflow_id": workflow_id, **data},
            lambda: out.say(f"saved {data['path']} ({data['format']})"),
        )
