"""What the user sees. Results go to stdout: one JSON document with --json, otherwise
text and tables. Progress goes to stderr: rich bars on a terminal, plain lines when
stderr is piped, nothing with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

# A job with more files than this gets one bar, not one per file.
MAX_FILE_BARS = 20


class Output:
    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.stdout = Console(highlight=False, soft_wrap=True)
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def live(self) -> bool:
        """Rich progress bars: a person is watching stderr."""
        return not self.json_mode and self.stderr.is_terminal

    def result(self, data: Any, human: Callable[[], None]) -> None:
        """The command's one result: data as JSON, or shown by human() for people."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            human()

    def say(self, text: str) -> None:
        """A line of result for people (stdout)."""
        self.stdout.print(Text(text))

    def note(self, text: str) -> None:
        """A line about progress (stderr); silent with --json."""
        if not self.json_mode:
            self.stderr.print(Text(text))

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        table = Table(*columns, box=None, pad_edge=False, header_style="bold")
        for row in rows:
            table.add_row(*(Text("" if v is None else str(v)) for v in row))
        self.stdout.print(table)

    def page(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        total: int | None,
        offset: int,
    ) -> None:
        """A table of one page of a list, saying when there is more."""
        self.table(columns, rows)
        if total is not None and offset + len(rows) < total:
            self.note(f"{len(rows)} of {total}: --offset {offset + len(rows)} or --all for more")


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)  # unreachable


def when(timestamp: str | None) -> str:
    """An API time (ISO 8601 UTC) to the minute, in one word for tables: 2026-12-05T01:52Z."""
    if not timestamp:
        return ""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def percent(job: dict[str, Any]) -> int:
    return int(job.get("progress") or 0)


def file_label(entry: dict[str, Any]) -> str:
    return entry.get("filename") or f"dataset {entry.get('dataset_id')}"


class _Board:
    """A context that owns a rich Progress while a person watches (else nothing)."""

    def __init__(self, out: Output, *columns: Any) -> None:
        self.out = out
        self.progress = Progress(*columns, console=out.stderr) if out.live else None

    def __enter__(self) -> Self:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()


class ExportBoard(_Board):
    """A bar per export job and per file while they run; on a pipe a line per change."""

    def __init__(self, out: Output) -> None:
        super().__init__(
            out,
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}", markup=False),
        )
        self._job_bars: dict[int, TaskID] = {}
        self._file_bars: dict[tuple[int, int], TaskID] = {}
        self._last: dict[tuple[int, int], str] = {}  # what a plain line last said

    def show(self, job: dict[str, Any]) -> None:
        if self.out.json_mode:
            return
        files = job.get("files") or []
        status = job["status"]
        counts = f"{job.get('processed_files', 0)}/{job.get('total_files', len(files))} files"
        if job.get("failed_files"):
            counts += f", {job['failed_files']} failed"
        if self.progress is None:
            self._plain(job["id"], -1, f"{status} {percent(job)}% ({counts})", job)
            for i, entry in enumerate(files):
                error = f": {entry['error']}" if entry.get("error") else ""
                self._plain(job["id"], i, f"{file_label(entry)} {entry['status']}{error}", job)
            return
        job_bar = self._job_bars.get(job["id"])
        if job_bar is None:
            job_bar = self.progress.add_task(
                f"export {job['id']} {job['name']}", total=100, status=""
            )
            self._job_bars[job["id"]] = job_bar
        self.progress.update(job_bar, completed=percent(job), status=f"{status} ({counts})")
        if len(files) > MAX_FILE_BARS:
            return
        for i, entry in enumerate(files):
            self._file_bar(job["id"], i, entry)

    def _file_bar(self, job_id: int, index: int, entry: dict[str, Any]) -> None:
        assert self.progress is not None
        bar = self._file_bars.get((job_id, index))
        if bar is None:
            bar = self.progress.add_task(f"  {file_label(entry)}", total=1, status="")
            self._file_bars[(job_id, index)] = bar
        status = entry["status"]
        if status == "processing":
            # The API tells a file's state, not its fraction: a pulsing bar.
            self.progress.update(bar, total=None, status=status)
        elif status in ("completed", "failed", "cancelled", "skipped"):
            detail = f"failed: {entry['error']}" if entry.get("error") else status
            self.progress.update(bar, total=1, completed=1, status=detail)
        else:
            self.progress.update(bar, total=1, completed=0, status=status)

    def _plain(self, job_id: int, index: int, text: str, job: dict[str, Any]) -> None:
        if self._last.get((job_id, index)) != text:
            self._last[(job_id, index)] = text
            self.out.note(f"export {job['id']}: {text}")


class TaskBoard(_Board):
    """A spinner per task (history export, import, extraction): tasks tell their state,
    not a fraction."""

    def __init__(self, out: Output) -> None:
        super().__init__(
            out,
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TextColumn("{task.fields[state]}", markup=False),
        )
        self._bars: dict[str, TaskID] = {}
        self._last: dict[str, str] = {}

    def show(self, label: str, state: str) -> None:
        if self.out.json_mode:
            return
        if self.progress is None:
            if self._last.get(label) != state:
                self._last[label] = state
                self.out.note(f"{label}: {state}")
            return
        bar = self._bars.get(label)
        if bar is None:
            bar = self._bars[label] = self.progress.add_task(label, total=None, state=state)
        self.progress.update(bar, state=state)


class Transfers(_Board):
    """Byte progress of uploads and downloads."""

    def __init__(self, out: Output) -> None:
        super().__init__(
            out,
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )

    def add(self, description: str, total: int | None) -> Callable[[int], None]:
        """Starts a bar; returns the function that advances it by a chunk's size."""
        if self.progress is None:
            size = f" ({human_size(total)})" if total is not None else ""
            self.out.note(f"{description}{size}")
            return lambda n: None
        progress = self.progress
        bar = progress.add_task(description, total=total)
        return lambda n: progress.advance(bar, n)
