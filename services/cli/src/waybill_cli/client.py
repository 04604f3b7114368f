"""Every HTTP call the CLI makes, in one place: the public API's paths and shapes, and
its errors turned into exit codes. Nothing here prints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from waybill_cli import __version__
from waybill_cli.config import KEY_ENV, Config
from waybill_cli.errors import CliError, ExitCode

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Uploads and downloads: the gateway answers an upload once the last byte is stored.
TRANSFER_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
# A stream may stay quiet while a job waits for a worker; past this the watcher reconnects.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
TASK_EXPORT_TYPE = "application/vnd.galaxy.task.export+json"


class StreamUnavailable(Exception):
    """The gateway has no event stream for this object: poll instead."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int | None


class Api:
    def __init__(self, url: str, api_key: str | None) -> None:
        if not api_key:
            raise CliError(f"no API key: run `waybill login` or set {KEY_ENV}", ExitCode.AUTH)
        self.url = url
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self.http = self._client(TIMEOUT)

    @classmethod
    def from_config(cls, config: Config) -> Api:
        return cls(config.url, config.api_key)

    def _client(self, timeout: httpx.Timeout) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={**self._auth, "User-Agent": f"waybill-cli/{__version__}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    # --- transport ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
        check(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return body_of(self.request(method, path, **kwargs))

    def list_page(self, path: str, params: dict[str, Any]) -> Page:
        return page_of(self.request("GET", path, params=_drop_none(params)))

    def list_all(self, path: str, params: dict[str, Any], page_size: int = 100) -> list[Any]:
        items: list[Any] = []
        while True:
            page = self.list_page(path, {**params, "limit": page_size, "offset": len(items)})
            items += page.items
            if len(page.items) < page_size or (page.total is not None and len(items) >= page.total):
                return items

    def listing(
        self, path: str, params: dict[str, Any], *, limit: int, offset: int, every: bool
    ) -> Page:
        """One page, or with every=True all pages (then the total is not needed)."""
        if every:
            return Page(self.list_all(path, _drop_none(params)), None)
        return self.list_page(path, {**params, "limit": limit, "offset": offset})

    def events(self, path: str, *, last_event_id: str | None = None) -> Iterator[ServerSentEvent]:
        """Server-Sent Events from path until the server ends the stream."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with (
            self._client(STREAM_TIMEOUT) as client,
            connect_sse(client, "GET", path, headers=headers) as source,
        ):
            response = source.response
            content_type = response.headers.get("content-type", "")
            if response.status_code in (404, 405, 501) or (
                response.is_success and "text/event-stream" not in content_type
            ):
                raise StreamUnavailable(path)
            if not response.is_success:
                response.read()
                check(response)
            yield from source.iter_sse()

    @contextmanager
    def download(self, path: str) -> Iterator[httpx.Response]:
        """A streamed GET of an API path (with the key)."""
        try:
            with self.http.stream("GET", path, timeout=TRANSFER_TIMEOUT) as response:
                if not response.is_success:
                    response.read()
                    check(response)
                yield response
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e

    @contextmanager
    def download_signed(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET of a signed storage URL: without the key, which is the gateway's
        and must not travel to the storage."""
        try:
            with (
                httpx.Client(timeout=TRANSFER_TIMEOUT) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    response.read()
                    raise CliError(
                        f"the download link answered {response.status_code}: it may have expired;"
                        " ask for the object again",
                        ExitCode.FAILED,
                    )
                yield response
        except httpx.TransportError as e:
            raise unreachable(url, e) from e

    # --- users -------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self.json("GET", "/api/users/me")

    def keys(self) -> list[dict[str, Any]]:
        return self.list_all("/api/users/me/keys", {})

    def create_key(self, name: str, expires_at: str | None) -> dict[str, Any]:
        body = _drop_none({"name": name, "expires_at": expires_at})
        return self.json("POST", "/api/users/me/keys", json=body)

    def revoke_key(self, key_id: int) -> None:
        self.request("DELETE", f"/api/users/me/keys/{key_id}")

    def usage(self) -> dict[str, Any]:
        return self.json("GET", "/api/users/me/usage")

    # --- catalog -----------------------------------------------------------------------

    def upload(
        self,
        path: Path,
        *,
        project_id: int | None,
        metadata: dict[str, Any] | None,
        on_bytes: Callable[[int], None],
    ) -> dict[str, Any]:
        """Streams the file in chunks (httpx reads a file object piece by piece)."""
        form: dict[str, str] = {}
        if project_id is not None:
            form["project_id"] = str(project_id)
        if metadata is not None:
            form["metadata"] = json.dumps(metadata)
        with path.open("rb") as f:
            return self.json(
                "POST",
                "/api/files",
                files={
                    "file": (path.name, CountingReader(f, on_bytes), "application/octet-stream")
                },
                data=form,
                timeout=TRANSFER_TIMEOUT,
            )

    def files(self, *, project_id: int | None, limit: int, offset: int, every: bool) -> Page:
        return self.listing(
            "/api/files", {"project_id": project_id}, limit=limit, offset=offset, every=every
        )

    def file(self, file_id: int) -> dict[str, Any]:
        return self.json("GET", f"/api/files/{file_id}")

    def file_content_path(self, file_id: int) -> str:
        return f"/api/files/{file_id}/content"

    def projects(self) -> list[dict[str, Any]]:
        return self.list_all("/api/projects", {})

    def create_project(self, name: str, description: str | None) -> dict[str, Any]:
        body = _drop_none({"name": name, "description": description})
        return self.json("POST", "/api/projects", json=body)

    # --- webhooks ------------------------------------------------------------------------

    def create_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", "/api/webhooks", json=body)

    def webhooks(self, *, limit: int, offset: int, every: bool) -> Page:
        return self.listing("/api/webhooks", {}, limit=limit, offset=offset, every=every)

    def update_webhook(self, webhook_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        return self.json("PATCH", f"/api/webhooks/{webhook_id}", json=changes)

    def delete_webhook(self, webhook_id: int) -> None:
        self.request("DELETE", f"/api/webhooks/{webhook_id}")

    def test_webhook(self, webhook_id: int) -> dict[str, Any]:
        return self.json("POST", f"/api/webhooks/{webhook_id}/test")

    def webhook_deliveries(self, webhook_id: int, *, limit: int, offset: int, every: bool) -> Page:
        return self.listing(
            f"/api/webhooks/{webhook_id}/deliveries", {}, limit=limit, offset=offset, every=every
        )

    # --- batch exports (the seed's Data Export API) ------------------------------------

    def create_export(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", "/api/data-export/jobs", json=body)

    def export(self, job_id: int) -> dict[str, Any]:
        return self.json("GET", f"/api/data-export/jobs/{job_id}")

    def export_stream_path(self, job_id: int) -> str:
        return f"/api/data-export/jobs/{job_id}/stream"

    def exports(
        self,
        *,
        status: str | None,
        export_format: str | None,
        limit: int,
        offset: int,
        every: bool,
    ) -> Page:
        return self.listing(
            "/api/data-export/jobs",
            {"status": status, "export_format": export_format},
            limit=limit,
            offset=offset,
            every=every,
        )

    def cancel_export(self, job_id: int) -> dict[str, Any]:
        return self.json("POST", f"/api/data-export/jobs/{job_id}/cancel")

    def delete_export(self, job_id: int) -> None:
        self.request("DELETE", f"/api/data-export/jobs/{job_id}")

    def export_statistics(self) -> dict[str, Any]:
        return self.json("GET", "/api/data-export/statistics")

    # --- histories, their exports and imports ------------------------------------------

    def histories(self, *, limit: int, offset: int, every: bool) -> Page:
        return self.listing("/api/histories", {}, limit=limit, offset=offset, every=every)

    def history_contents(self, history_id: int) -> list[dict[str, Any]]:
        return self.json("GET", f"/api/histories/{history_id}/contents")

    def extraction_summary(self, history_id: int) -> dict[str, Any]:
        return self.json("GET", f"/api/histories/{history_id}/extraction_summary")

    def prepare_store_download(self, history_id: int, options: dict[str, Any]) -> dict[str, Any]:
        return self.json(
            "POST", f"/api/histories/{history_id}/prepare_store_download", json=options
        )

    def write_store(self, history_id: int, options: dict[str, Any]) -> dict[str, Any]:
        return self.json("POST", f"/api/histories/{history_id}/write_store", json=options)

    def history_exports(self, history_id: int) -> list[dict[str, Any]]:
        return self.json(
            "GET",
            f"/api/histories/{history_id}/exports",
            headers={"Accept": TASK_EXPORT_TYPE},
        )

    def short_term_url(self, storage_request_id: str) -> str:
        """The signed link of a finished short-term download (the gateway redirects to it)."""
        response = self.request(
            "GET", f"/api/short_term_storage/{storage_request_id}", follow_redirects=False
        )
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            raise CliError(
                f"short-term storage {storage_request_id} gave no download link", ExitCode.FAILED
            )
        return location

    def import_history(self, store_content_uri: str) -> dict[str, Any]:
        return self.json(
            "POST",
            "/api/histories/from_store_async",
            json={"store_content_uri": store_content_uri},
        )

    # --- tasks -------------------------------------------------------------------------

    def task_state(self, task_id: str) -> str:
        return str(self.json("GET", f"/api/tasks/{task_id}/state"))

    def task_result(self, task_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/tasks/{task_id}/result")

    def task_stream_path(self, task_id: str) -> str:
        return f"/api/tasks/{task_id}/stream"

    # --- workflows ---------------------------------------------------------------------

    def extract_workflow(self, body: dict[str, Any], *, wait_seconds: int) -> dict[str, Any]:
        return self.json(
            "POST",
            "/api/workflows/extract",
            json=body,
            headers={"Prefer": f"wait={wait_seconds}"},
            timeout=httpx.Timeout(wait_seconds + 30.0, connect=10.0),
        )

    def workflow_download_path(self, workflow_id: int, workflow_format: str) -> str:
        return f"/api/workflows/{workflow_id}/download?format={workflow_format}"


class CountingReader:
    """A binary file that reports each chunk read (for an upload's progress bar), and
    still tells httpx its size, so the request has a Content-Length."""

    def __init__(self, f: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._f = f
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        chunk = self._f.read(size)
        self._on_bytes(len(chunk))
        return chunk

    def fileno(self) -> int:
        return self._f.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as e:
        raise CliError(
            f"{response.request.url} answered with something that is not JSON:"
            " is it a Waybill gateway?",
            ExitCode.UNAVAILABLE,
        ) from e


def page_of(response: httpx.Response) -> Page:
    """A list answer: a JSON array, its total in X-Total-Count."""
    body = body_of(response)
    total = response.headers.get("X-Total-Count", "")
    return Page(list(body), int(total) if total.isdigit() else None)


def check(response: httpx.Response) -> None:
    """Raise the CliError (message and exit code) that an error answer means."""
    status = response.status_code
    if status < 400:
        return
    detail = error_detail(response)
    if status == 401:
        raise CliError(f"the API key was refused ({detail}): run `waybill login`", ExitCode.AUTH)
    if status == 403:
        raise CliError(f"not allowed: {detail}", ExitCode.AUTH)
    if status in (400, 422):
        raise CliError(f"invalid request: {detail}", ExitCode.USAGE)
    if status == 429:
        retry = response.headers.get("Retry-After")
        after = f"; retry after {retry} s" if retry else ""
        what = "over a quota" if "quota" in detail else "rate limited"
        raise CliError(f"{what}: {detail}{after}", ExitCode.UNAVAILABLE)
    if status >= 500:
        raise CliError(f"the gateway answered {status}: {detail}", ExitCode.UNAVAILABLE)
    raise CliError(detail, ExitCode.FAILED)


def error_detail(response: httpx.Response) -> str:
    """FastAPI's {"detail": ...}, a string or a list of validation errors, in one line."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p != "body"]
                parts.append(f"{'.'.join(loc)}: {item.get('msg')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return " ".join(str(detail).split())


def unreachable(url: str, error: httpx.TransportError) -> CliError:
    reason = str(error) or type(error).__name__
    return CliError(f"cannot reach {url}: {reason}", ExitCode.UNAVAILABLE)


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}
