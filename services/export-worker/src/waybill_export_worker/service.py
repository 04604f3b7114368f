"""One batch export, start to finish: check that the owner may read every file, take
the lease, then stream every file from S3 through the converter into the package,
upload it under a key derived from the task, and report each step as an event.

The export itself (`ExportJob.run`) is blocking code that runs in one worker thread:
S3 calls, conversion and packing are all blocking, and one thread hop per export
costs less than one per call. Events go back to the event loop as they happen."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from waybill_export_worker import conversion
from waybill_export_worker.conversion.archive import ZipPackager, safe_member_name
from waybill_export_worker.manifest import build_manifest
from waybill_export_worker.repository import ExportItem, load_export_items
from waybill_export_worker.settings import ExportWorkerSettings
from waybill_shared import metrics
from waybill_shared.clock import utcnow
from waybill_shared.contracts.messages import Artifact, DataExportRequested, ItemResult
from waybill_shared.db.session import unit_of_work
from waybill_shared.errors import NotFound
from waybill_shared.export_options import parse_export_options
from waybill_shared.provenance.lineage import lineage_for
from waybill_shared.runtime import Runtime
from waybill_shared.storage import BlockingStorage, ObjectMissing, StoredObject
from waybill_shared.tasks.events import EventEmitter
from waybill_shared.tasks.repository import TaskRow
from waybill_shared.tasks.runner import LeasedTask, Stopped, TaskHandlers, TaskSpec, run_leased_task

log = structlog.get_logger(__name__)

# What an item became: a file in the work directory, or bytes (an export in memory).
Output = Path | bytes


def artifact_prefix(task_uuid: object) -> str:
    return f"exports/{task_uuid}/"


async def run_data_export(
    *,
    runtime: Runtime,
    settings: ExportWorkerSettings,
    request: DataExportRequested,
    principal: str | None,
    ack: Callable[[], Awaitable[None]],
    heavy: asyncio.Semaphore,
) -> None:
    """`heavy` bounds how many conversions or large packages run at once; a small
    export of files packed as they are never waits for it."""

    async def authorize(task: TaskRow) -> list[ExportItem]:
        async with runtime.db.acquire() as conn:
            items = await load_export_items(
                conn,
                owner_id=task.owner_id,
                file_ids=request.file_ids,
                dataset_ids=request.dataset_ids,
            )
        if not items:
            raise NotFound("the request names no files")
        return items

    async def work(leased: LeasedTask, items: list[ExportItem]) -> None:
        lineage = None
        if request.include_lineage:
            async with unit_of_work(runtime.sessions) as session:
                lineage = await lineage_for(
                    session, file_ids=request.file_ids, dataset_ids=request.dataset_ids
                )
        job = ExportJob(runtime.storage.blocking, settings, request, leased, items, lineage)
        small = request.export_format == "zip" and (
            sum(item.size for item in items) <= settings.small_export_bytes
        )
        async with contextlib.nullcontext() if small else heavy:
            leased.check_stop()
            event, fields = await asyncio.to_thread(job.run)
        await leased.emitter.emit(event, **fields)

    async def remove_partial_artifacts() -> None:
        await runtime.storage.remove_prefix(artifact_prefix(request.task_id))

    await run_leased_task(
        runtime=runtime,
        spec=TaskSpec(
            task_uuid=request.task_id,
            kind="data_export",
            owner_id=request.owner_id,
            principal=principal,
            request=request.model_dump(mode="json"),
            job_key=request.job_key,
            total_items=len(request.file_ids) + len(request.dataset_ids),
            ttl_hours=request.ttl_hours,
        ),
        ack=ack,
        handlers=TaskHandlers(authorize, work, on_stopped=remove_partial_artifacts),
    )


@dataclass
class ExportJob:
    storage: BlockingStorage
    settings: ExportWorkerSettings
    request: DataExportRequested
    leased: LeasedTask
    items: list[ExportItem]
    lineage: dict[str, Any] | None
    results: list[ItemResult] = field(default_factory=list)
    # No progress event inside a file before this much time has passed: a small
    # export reports its items and its end, nothing in between.
    _last_progress: float = field(default_factory=time.monotonic)

    @property
    def packed(self) -> bool:
        return self.request.compress

    @property
    def in_memory(self) -> bool:
        """Files packed as they are and small in all: fetched, packed and uploaded in
        memory (a temporary directory and the file writes and reads around it cost a
        tiny export more than its S3 calls' Python side)."""
        total = sum(item.size for item in self.items)
        return self.request.export_format == "zip" and total <= self.settings.small_export_bytes

    @property
    def separate(self) -> bool:
        """`compress: false` with several files: each converted file is stored on its
        own, none is packed."""
        return not self.request.compress and len(self.items) > 1

    @property
    def emitter(self) -> EventEmitter:
        return self.leased.emitter

    def check_stop(self) -> None:
        self.leased.check_stop()

    def run(self) -> tuple[str, dict[str, Any]]:
        """The whole export (blocking); returns its terminal event and its fields."""
        if self.in_memory:
            return self._run(None)
        workdir = Path(tempfile.mkdtemp(prefix="waybill-export-", dir=self.settings.work_dir))
        try:
            return self._run(workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, workdir: Path | None) -> tuple[str, dict[str, Any]]:
        """`workdir` None: everything in memory (see `in_memory`)."""
        package: Path | io.BytesIO = workdir / "package.zip" if workdir else io.BytesIO()
        taken: set[str] = {"export_metadata.json"}
        single_output: Output | None = None
        packager = ZipPackager(package) if self.packed else None
        try:
            for index, item in enumerate(self.items):
                self.check_stop()
                output, result = self.export_item(index, item, workdir, taken)
                if output is not None:
                    if packager is not None:
                        assert result.output_name is not None
                        packager.add(result.output_name, output)
                        if isinstance(output, Path):
                            output.unlink()
                    elif self.separate:
                        result = self.store_item(index, output, result)
                    else:
                        single_output = output
                self.results.append(result)
                self.emitter.emit_threadsafe(
                    "item",
                    item_index=index,
                    item=result,
                    processed_items=len(self.results),
                    failed_items=sum(r.status == "failed" for r in self.results),
                    progress=self.progress(index + 1, 0.0, cap=99.0),
                )
            self.check_stop()
            completed = [r for r in self.results if r.status == "completed"]
            if not completed:
                errors = "; ".join(f"{r.filename}: {r.error}" for r in self.results)
                return "failed", {
                    "error": f"every file failed: {errors}"[:4000],
                    "processed_items": len(self.results),
                    "failed_items": len(self.results),
                }
            manifest = build_manifest(
                request=self.request,
                task=self.leased.task,
                items=self.items,
                results=self.results,
                exported_at=utcnow(),
                lineage=self.lineage,
            )
            if packager is not None and self.request.include_metadata:
                packager.add("export_metadata.json", json.dumps(manifest, indent=2).encode())
        finally:
            if packager is not None:
                packager.close()
        if self.separate:
            return self.completed(manifest, artifact=None)
        upload: Output
        if packager is not None:
            upload = package.getvalue() if isinstance(package, io.BytesIO) else package
            filename, content_type = "export.zip", "application/zip"
        else:
            assert single_output is not None and completed[0].output_name is not None
            upload, filename = single_output, completed[0].output_name
            content_type = "application/octet-stream"
        self.check_stop()
        suffix = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        key = f"{artifact_prefix(self.request.task_id)}export.{suffix}"
        stored = self.put(key, upload, content_type=content_type)
        artifact = Artifact(
            key=stored.key,
            size=stored.size,
            sha256=stored.sha256,
            content_type=content_type,
            filename=self.download_name(filename),
        )
        return self.completed(manifest, artifact=artifact)

    def completed(
        self, manifest: dict[str, Any], *, artifact: Artifact | None
    ) -> tuple[str, dict[str, Any]]:
        """The completed event: the package (or the one file) is `artifact`; without
        one, each file's own artifact is in its result."""
        self.check_stop()
        completed = [r for r in self.results if r.status == "completed"]
        output_size = (
            artifact.size
            if artifact is not None
            else sum(r.artifact.size for r in completed if r.artifact is not None)
        )
        return "completed", {
            "progress": 100.0,
            "processed_items": len(self.results),
            "failed_items": len(self.results) - len(completed),
            "artifact": artifact,
            "result": {"manifest": manifest["export_info"], "output_size": output_size},
        }

    def put(
        self, key: str, output: Output, *, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        if isinstance(output, bytes):
            return self.storage.put_bytes(key, output, content_type=content_type)
        return self.storage.put_file(key, output, content_type=content_type)

    def store_item(self, index: int, output: Output, result: ItemResult) -> ItemResult:
        """Store one converted file as its own artifact, under a key derived from the
        task and the item's position (never from a user-supplied name)."""
        assert result.output_name is not None
        self.check_stop()
        suffix = result.output_name.rsplit(".", 1)[-1] if "." in result.output_name else "bin"
        key = f"{artifact_prefix(self.request.task_id)}files/{index}.{suffix}"
        stored = self.put(key, output)
        if isinstance(output, Path):
            output.unlink()
        artifact = Artifact(
            key=stored.key, size=stored.size, sha256=stored.sha256, filename=result.output_name
        )
        return result.model_copy(update={"artifact": artifact})

    def download_name(self, filename: str) -> str:
        stem = safe_member_name(self.request.name, set()).rsplit(".", 1)[0] or "export"
        ext = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        return f"{stem}.{ext}"

    def progress(self, done: int, fraction: float, *, cap: float = 100.0) -> float:
        total = max(len(self.items), 1)
        return min(round(100.0 * (done + fraction) / total, 2), cap)

    def progress_callback(self, index: int, size: int, weight: float, offset: float) -> Any:
        """A callback (for any thread) that turns bytes done within item `index` into
        throttled progress events."""

        def on_bytes(done_bytes: int) -> None:
            now = time.monotonic()
            if now - self._last_progress < self.settings.progress_interval_seconds:
                return
            self._last_progress = now
            fraction = offset + weight * min(done_bytes / max(size, 1), 1.0)
            self.emitter.emit_threadsafe(
                "progress",
                progress=self.progress(index, fraction, cap=99.0),
                processed_items=index,
                failed_items=sum(r.status == "failed" for r in self.results),
            )

        return on_bytes

    def export_item(
        self, index: int, item: ExportItem, workdir: Path | None, taken: set[str]
    ) -> tuple[Output | None, ItemResult]:
        fmt = self.request.export_format
        base = ItemResult(
            file_id=item.file_id,
            dataset_id=item.dataset_id,
            filename=item.filename,
            status="failed",
        )
        gone = f"the bytes of file {item.file_id} are no longer in storage"
        if item.missing:
            return None, base.model_copy(update={"error": gone})
        try:
            if workdir is None:  # packed as it is, in memory
                data = self.storage.get_bytes(item.storage_key)
                name = safe_member_name(item.filename, taken)
                return data, base.model_copy(
                    update={"status": "completed", "output_name": name, "size": len(data)}
                )
            source = workdir / f"source-{index}"
            convert = fmt != "zip"
            self.storage.download(
                item.storage_key,
                source,
                self.progress_callback(index, item.size, 0.5 if convert else 1.0, 0.0),
            )
            if not convert:
                name = safe_member_name(item.filename, taken)
                return source, base.model_copy(
                    update={
                        "status": "completed",
                        "output_name": name,
                        "size": source.stat().st_size,
                    }
                )
            stem = item.filename.rsplit(".", 1)[0] if "." in item.filename else item.filename
            name = safe_member_name(conversion.output_filename(stem, fmt), taken)
            target = workdir / f"output-{index}-{name}"
            options = parse_export_options(fmt, self.request.export_options)
            outcome = conversion.convert(
                source=source,
                source_format=item.format,
                target=target,
                target_format=fmt,
                options=options,
                on_progress=self.progress_callback(index, item.size, 0.5, 0.5),
                should_stop=lambda: self.leased.should_stop,
            )
            metrics.BYTES_CONVERTED.labels(format=fmt).inc(item.size)
            source.unlink(missing_ok=True)
            return target, base.model_copy(
                update={
                    "status": "completed",
                    "output_name": name,
                    "size": target.stat().st_size,
                    "warnings": outcome.warnings,
                    "rows_read": outcome.rows_read,
                    "rows_written": outcome.rows,
                }
            )
        except conversion.ConversionCancelled as exc:
            raise Stopped from exc
        except ObjectMissing:
            return None, base.model_copy(update={"error": gone})
        except conversion.ConversionError as exc:
            return None, base.model_copy(update={"error": str(exc)})
        except Exception as exc:  # one bad file fails alone
            log.exception("item failed", index=index, file_id=item.file_id)
            return None, base.model_copy(update={"error": f"could not export: {exc}"})
