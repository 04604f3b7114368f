"""Following exports and tasks until they end: the gateway's event stream (Server-Sent
Events) says *when* something changed, a GET says *what* (so the display never depends
on the events' shape). Without a stream (an older gateway, a proxy that buffers) the
watcher polls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from waybill_cli.client import Api, StreamUnavailable
from waybill_cli.errors import CliError, ExitCode

JOB_TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
TASK_TERMINAL = frozenset({"SUCCESS", "FAILURE"})

POLL_START, POLL_MAX = 0.5, 2.0
# With a live stream, a GET at least this often anyway: a stream can die silently.
STREAM_CHECK = 10.0
# How long a watch survives a gateway that cannot be reached (a restart, say).
OUTAGE_GRACE = 30.0
STREAM_RETRIES = 3
RECONNECT_DELAY = 1.0


@dataclass(frozen=True)
class Watched:
    key: str
    fetch: Callable[[], dict[str, Any]]
    finished: Callable[[dict[str, Any]], bool]
    stream_path: str


def export_job(api: Api, job_id: int) -> Watched:
    return Watched(
        key=f"export {job_id}",
        fetch=lambda: api.export(job_id),
        finished=lambda job: job["status"] in JOB_TERMINAL,
        stream_path=api.export_stream_path(job_id),
    )


def task(api: Api, task_id: str) -> Watched:
    return Watched(
        key=f"task {task_id}",
        fetch=lambda: {"task_id": task_id, "state": api.task_state(task_id)},
        finished=lambda snapshot: snapshot["state"] in TASK_TERMINAL,
        stream_path=api.task_stream_path(task_id),
    )


class _Signals:
    """Between the stream listeners and the watcher: which objects changed, which still
    have a stream, which have finished."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._changed: set[str] = set()
        self._streaming: set[str] = set()
        self._finished: set[str] = set()

    def changed(self, key: str) -> None:
        with self._cond:
            self._changed.add(key)
            self._cond.notify()

    def start_stream(self, key: str) -> None:
        with self._cond:
            self._streaming.add(key)

    def stream_lost(self, key: str) -> None:
        with self._cond:
            self._streaming.discard(key)
            self._changed.add(key)
            self._cond.notify()

    def finish(self, key: str) -> None:
        with self._cond:
            self._finished.add(key)

    def finished(self, key: str) -> bool:
        with self._cond:
            return key in self._finished

    def polled(self, keys: set[str]) -> set[str]:
        with self._cond:
            return keys - self._streaming

    def wait(self, timeout: float) -> set[str]:
        with self._cond:
            self._cond.wait_for(lambda: self._changed, timeout)
            changed, self._changed = self._changed, set()
            return changed


def watch(api: Api, items: list[Watched]) -> Iterator[tuple[Watched, dict[str, Any]]]:
    """Yields (item, snapshot) at once for every item, then whenever one changed, until
    every item has finished."""
    signals = _Signals()
    pending: dict[str, Watched] = {}
    for item in items:
        snapshot = _fetch(item)
        yield item, snapshot
        if not item.finished(snapshot):
            pending[item.key] = item
            signals.start_stream(item.key)
            threading.Thread(target=_listen, args=(api, item, signals), daemon=True).start()
    interval = POLL_START
    try:
        while pending:
            polled = signals.polled(set(pending))
            changed = signals.wait(interval if polled else STREAM_CHECK)
            # Nothing said anything within the wait: look at everything once.
            due = (changed | polled) if changed else set(pending)
            interval = min(interval * 1.5, POLL_MAX)
            for key in sorted(due & set(pending)):
                item = pending[key]
                snapshot = _fetch(item)
                yield item, snapshot
                if item.finished(snapshot):
                    del pending[key]
                    signals.finish(key)
    finally:
        for key in pending:  # stops the listeners of an abandoned watch
            signals.finish(key)


def _listen(api: Api, item: Watched, signals: _Signals) -> None:
    """Marks the item changed on every event. A stream that ends is resumed from the
    last event (Last-Event-ID) until the watcher has seen the item finish; a missing
    or failing stream leaves the item to polling."""
    last_event_id: str | None = None
    failures = 0
    while not signals.finished(item.key):
        try:
            for event in api.events(item.stream_path, last_event_id=last_event_id):
                last_event_id = event.id or last_event_id
                failures = 0
                signals.changed(item.key)
        except StreamUnavailable:
            break
        except (httpx.HTTPError, CliError):
            failures += 1
            if failures >= STREAM_RETRIES:
                break
        # The stream ends at the terminal state: let the watcher look now.
        signals.changed(item.key)
        time.sleep(RECONNECT_DELAY)
    signals.stream_lost(item.key)


def _fetch(item: Watched) -> dict[str, Any]:
    """One GET, retried while the gateway is unreachable (a restart), for a while."""
    deadline = time.monotonic() + OUTAGE_GRACE
    while True:
        try:
            return item.fetch()
        except CliError as e:
            if e.code != ExitCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
