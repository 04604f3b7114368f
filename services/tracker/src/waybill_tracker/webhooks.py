"""The webhook delivery loop: claim due deliveries, POST each (Standard Webhooks
headers, signed), record how it went, retry with backoff, disable a subscription
that keeps failing. Deliveries are rows made in the transaction that recorded their
task event, so a restart loses none: an attempt that never recorded its outcome is
claimed again once its claim runs out (at least once; `webhook-id` lets a receiver
drop a repeat)."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks.webhooks import Webhook

from waybill_shared import metrics
from waybill_shared.clock import utcnow
from waybill_shared.db.pg import Pool, Record, from_json
from waybill_shared.runtime import Runtime
from waybill_shared.storage import Storage
from waybill_shared.tasks.repository import TaskRow, get_tasks
from waybill_shared.tasks.state import TERMINAL
from waybill_shared.webhooks import repository
from waybill_shared.webhooks.events import TEST
from waybill_shared.webhooks.payload import (
    EventView,
    FileLink,
    PingData,
    TaskEventData,
    TaskView,
    WebhookMessage,
)
from waybill_shared.webhooks.policy import AddressPolicy, Refused, parse_url
from waybill_shared.webhooks.retry import next_attempt
from waybill_tracker.settings import TrackerSettings

log = structlog.get_logger(__name__)
USER_AGENT = "Waybill-Webhooks/1"
ERROR_BODY_CHARS = 200


class VettedResolver(AbstractResolver):
    """Resolves as usual, then refuses a host whose addresses the policy refuses: the
    connection goes only to addresses checked at this attempt (DNS rebinding)."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        self.policy.check(host, [ipaddress.ip_address(r["host"]) for r in found])
        return found

    async def close(self) -> None:
        await self.inner.close()


def link_lifetime(task: TaskRow, *, url_seconds: int, now: datetime) -> timedelta | None:
    """How long a link signed now may live: while the completed artifact does, at most
    `url_seconds`; None when there is nothing to link to."""
    if task.status != "completed" or task.expires_at is None:
        return None
    lifetime = min(timedelta(seconds=url_seconds), task.expires_at - now)
    return lifetime if lifetime.total_seconds() >= 1 else None


def task_view(task: TaskRow, storage: Storage, *, url_seconds: int, now: datetime) -> TaskView:
    """The task as a delivery shows it, with its artifacts' links signed now: the
    package's (or the one file's), or each file's own for several files exported
    without compression."""
    request = task.request
    lifetime = link_lifetime(task, url_seconds=url_seconds, now=now)
    download_url = None
    files: list[FileLink] = []
    if lifetime is not None and task.artifact_key:
        filename = (task.result.get("artifact") or {}).get("filename")
        download_url = storage.presigned_url(task.artifact_key, expires=lifetime, filename=filename)
    elif lifetime is not None:
        for item in task.items:
            if item and (artifact := item.get("artifact")):
                url = storage.presigned_url(
                    artifact["key"], expires=lifetime, filename=artifact.get("filename")
                )
                files.append(FileLink(output_name=item.get("output_name"), download_url=url))
    return TaskView(
        id=task.id,
        task_id=task.uuid,
        kind=task.kind,
        name=request.get("name") or request.get("workflow_name"),
        job_key=task.job_key,
        status=task.status,
        progress=100 if task.status in ("completed", "expired") else min(int(task.progress), 99),
        total_items=task.total_items,
        processed_items=task.processed_items,
        failed_items=task.failed_items,
        error_message=task.error_message if task.status in TERMINAL else None,
        output_size=task.artifact_size,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        expires_at=task.expires_at,
        download_url=download_url,
        files=files,
    )


def event_view(event: Record) -> EventView:
    payload = from_json(event["payload"]) or {}
    return EventView(
        type=event["event_type"],
        status=event["status"],
        progress=int(event["progress"]),
        attempt=event["attempt"],
        seq=event["seq"],
        occurred_at=event["occurred_at"],
        error=payload.get("error"),
    )


def message_body(
    due: repository.Due, *, task: TaskView | None, event: EventView | None, now: datetime
) -> bytes:
    """The JSON body (see waybill_shared.webhooks.payload)."""
    data: TaskEventData | PingData
    if due.event == TEST:
        data = PingData(webhook_id=due.subscription_id, message="a test delivery from Waybill")
    elif task is not None and event is not None:
        data = TaskEventData(event=event, task=task)
    else:
        raise LookupError("its task is gone")
    kind = "webhook.test" if due.event == TEST else f"task.{due.event}"
    return WebhookMessage(type=kind, timestamp=now, data=data).model_dump_json().encode()


def signed_headers(secret: str, message_id: str, now: datetime, payload: bytes) -> dict[str, str]:
    """Standard Webhooks headers: the signature is `v1,` and base64 of HMAC-SHA256,
    keyed with the secret's bytes, over `id.timestamp.body`."""
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, payload),
    }


class Deliveries:
    """The delivery loop of one tracker process."""

    def __init__(self, runtime: Runtime, settings: TrackerSettings) -> None:
        self.db: Pool = runtime.db
        self.storage = runtime.storage
        self.settings = settings
        self.policy = settings.webhook_policy()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(resolver=VettedResolver(self.policy), limit=100)
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as http:
            while True:
                try:
                    claimed = await self.deliver_due(http)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook deliveries failed; trying again")
                    claimed = 0
                if claimed < self.settings.webhook_batch_size:
                    await asyncio.sleep(self.settings.webhook_poll_seconds)

    async def deliver_due(self, http: aiohttp.ClientSession) -> int:
        """One round: claim, send all at once, record. Returns how many were claimed."""
        settings = self.settings
        async with self.db.acquire() as conn:
            # The claim outlives one attempt, so only a lost attempt is taken again.
            due = await repository.claim_due(
                conn,
                limit=settings.webhook_batch_size,
                lease_seconds=2 * settings.webhook_timeout_seconds,
            )
            if not due:
                return 0
            tasks = await get_tasks(conn, [d.task_id for d in due if d.task_id is not None])
            events = await repository.events_by_id(
                conn, [d.event_id for d in due if d.event_id is not None]
            )
        try:
            outcomes = await asyncio.gather(
                *(
                    self.attempt(http, d, tasks.get(d.task_id or 0), events.get(d.event_id or 0))
                    for d in due
                )
            )
        except asyncio.CancelledError:
            # Stopping: hand the claims back, so the next tracker need not wait them out.
            await asyncio.shield(self.release(due))
            raise
        async with self.db.acquire() as conn, conn.transaction():
            disabled = await repository.record_outcomes(
                conn, outcomes, disable_after=settings.webhook_disable_after_failures
            )
        for outcome in outcomes:
            label = "delivered" if outcome.ok else "retry" if outcome.retry_at else "failed"
            metrics.WEBHOOK_ATTEMPTS.labels(outcome=label).inc()
        for record in disabled:
            log.warning(
                "webhook subscription disabled",
                subscription_id=record["id"],
                reason=record["disabled_reason"],
            )
        return len(due)

    async def release(self, due: list[repository.Due]) -> None:
        async with self.db.acquire() as conn:
            await repository.release(conn, [d.id for d in due])

    async def attempt(
        self,
        http: aiohttp.ClientSession,
        due: repository.Due,
        task: TaskRow | None,
        event: Record | None,
    ) -> repository.Outcome:
        now = utcnow()
        settings = self.settings
        code: int | None = None
        error: str | None
        try:
            payload = message_body(
                due,
                task=task_view(
                    task, self.storage, url_seconds=settings.download_url_seconds, now=now
                )
                if task is not None
                else None,
                event=event_view(event) if event is not None else None,
                now=now,
            )
        except LookupError as exc:  # nothing left to tell: given up at once
            return repository.Outcome(due.id, due.subscription_id, False, None, str(exc))
        except Exception as exc:  # signing a link failed, say: this attempt failed alone
            log.exception("webhook payload failed", delivery_id=due.id)
            error = f"the delivery could not be prepared: {exc!r}"
        else:
            code, error = await self.post(http, due, payload, now)
        if error is None:
            return repository.Outcome(due.id, due.subscription_id, True, code, None)
        retry_at = next_attempt(
            attempt=due.attempt,
            created_at=due.created_at,
            now=utcnow(),
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_max_seconds,
            window=settings.webhook_retry_window_seconds,
        )
        return repository.Outcome(due.id, due.subscription_id, False, code, error, retry_at)

    async def post(
        self, http: aiohttp.ClientSession, due: repository.Due, payload: bytes, now: datetime
    ) -> tuple[int | None, str | None]:
        """(response code, error); error None when the receiver took it (2xx)."""
        try:
            target = parse_url(due.url)
            if target.address is not None:  # no resolver runs for an address
                self.policy.check(target.host, [target.address])
            headers = signed_headers(due.secret, due.message_id, now, payload)
            async with http.post(
                due.url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return response.status, None
                text = (await response.content.read(ERROR_BODY_CHARS)).decode("utf-8", "replace")
                redirect = " (redirects are not followed)" if 300 <= response.status < 400 else ""
                return response.status, f"HTTP {response.status}{redirect}: {text}".strip(": ")
        except Refused as exc:
            return None, f"refused: {exc}"
        except TimeoutError:
            return None, f"no answer within {self.settings.webhook_timeout_seconds:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1000]
