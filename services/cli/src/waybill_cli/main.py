"""The `waybill` command: wiring of the command groups, and main(), which turns every
error into one line on stderr and an exit code (see errors.ExitCode)."""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from waybill_cli import __version__
from waybill_cli.commands import auth, exports, files, histories, keys, webhooks, workflows
from waybill_cli.errors import CliError, ExitCode

EPILOG = (
    "Exit codes: 0 done; 1 the task failed or was cancelled, or the API refused "
    "(not found, conflict); 2 bad usage or a request the API found invalid; "
    "3 the gateway cannot be reached or cannot serve now; 4 no API key, or it was "
    "refused. WAYBILL_URL and WAYBILL_API_KEY override `waybill login`."
)

app = typer.Typer(
    name="waybill",
    help="The command line for Waybill: upload files, export them in research formats, "
    "export and re-import histories, extract workflows. Every command takes --json.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"waybill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    pass


app.command()(auth.login)
app.command()(auth.logout)
app.command()(auth.whoami)
app.command()(keys.usage)
app.command()(files.upload)
app.command()(workflows.extract)
app.add_typer(files.file_app, name="file")
app.add_typer(files.project_app, name="project")
app.add_typer(exports.export_app, name="export")
app.add_typer(histories.history_app, name="history")
app.add_typer(workflows.workflow_app, name="workflow")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(webhooks.webhooks_app, name="webhooks")


def run(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code. Errors are one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="waybill", standalone_mode=False)
    except CliError as e:
        return fail(e.message, e.code)
    except typer.TyperException as e:  # typer's (vendored click's) usage errors
        code = getattr(e, "exit_code", ExitCode.USAGE)
        message = e.format_message()
        if not message.strip():  # no arguments: the help was shown
            return code
        ctx = getattr(e, "ctx", None)
        if code == ExitCode.USAGE and ctx is not None:
            message += f" (see `{ctx.command_path} --help`)"
        return fail(message, code)
    except (KeyboardInterrupt, typer.Abort):
        return fail("interrupted", ExitCode.INTERRUPTED)
    except OSError as e:
        if e.errno == errno.EPIPE:  # the reader of a pipe went away (| head)
            # Python's last flush of stdout at exit would complain again: point it nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return ExitCode.FAILED
        return fail(str(e), ExitCode.FAILED)
    except Exception as e:
        if os.environ.get("WAYBILL_DEBUG"):
            raise
        return fail(
            f"unexpected {type(e).__name__}: {e} (WAYBILL_DEBUG=1 shows where)", ExitCode.FAILED
        )
    return result if isinstance(result, int) else ExitCode.OK


def fail(message: str, code: int) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text("error: ", style="bold red") + Text(" ".join(message.split()))
    )
    return code


def main() -> None:
    sys.exit(run())
