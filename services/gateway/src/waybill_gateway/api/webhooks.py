"""Webhooks: subscriptions to the caller's task events, and their delivery log.
Deliveries are made and sent by the tracker (see waybill_shared.webhooks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header

from waybill_gateway.api.common import IdPath, PageDep, paginated
from waybill_gateway.deps import CurrentUser, DbDep, SettingsDep, TransactionDep
from waybill_gateway.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookUpdate,
)
from waybill_gateway.services import webhooks
from waybill_shared.db.pg import Record
from waybill_shared.webhooks.payload import WebhookMessage

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


def webhook_out(record: Record) -> WebhookOut:
    return WebhookOut.model_validate(dict(record))


def delivery_out(record: Record) -> WebhookDeliveryOut:
    values = dict(record)
    values["task_id"] = values.pop("task_uuid")
    if values["status"] != "pending":
        values["next_attempt_at"] = None
    return WebhookDeliveryOut.model_validate(values)


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, db: DbDep, user: CurrentUser, settings: SettingsDep
) -> WebhookCreated:
    """Subscribe to your tasks' events. The answer holds the signing secret, this once."""
    record, secret = await webhooks.create(
        db,
        user,
        url=body.url,
        events=list(body.events),
        secret=body.secret,
        policy=settings.webhook_policy(),
    )
    return WebhookCreated(**webhook_out(record).model_dump(), secret=secret)


@router.get("", **paginated(WebhookOut))
async def list_webhooks(conn: TransactionDep, user: CurrentUser, page: PageDep) -> list[WebhookOut]:
    """Yours, oldest first (an administrator's: everyone's)."""
    records, total = await webhooks.listing(conn, user, limit=page.limit, offset=page.offset)
    return page.answer([webhook_out(r) for r in records], total)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: IdPath, conn: TransactionDep, user: CurrentUser) -> WebhookOut:
    return webhook_out(await webhooks.get(conn, user, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: IdPath, body: WebhookUpdate, db: DbDep, user: CurrentUser, settings: SettingsDep
) -> WebhookOut:
    record = await webhooks.update(
        db,
        user,
        webhook_id,
        url=body.url,
        events=list(body.events) if body.events is not None else None,
        secret=body.secret,
        enabled=body.enabled,
        policy=settings.webhook_policy(),
    )
    return webhook_out(record)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: IdPath, conn: TransactionDep, user: CurrentUser) -> None:
    """Its deliveries, sent or not, go with it."""
    await webhooks.delete(conn, user, webhook_id)


@router.post("/{webhook_id}/test", status_code=202, response_model=WebhookDeliveryOut)
async def test_webhook(
    webhook_id: IdPath, conn: TransactionDep, user: CurrentUser
) -> WebhookDeliveryOut:
    """A `webhook.test` delivery, sent (and retried) like any other; follow it in the
    deliveries."""
    return delivery_out(await webhooks.send_test(conn, user, webhook_id))


@router.get("/{webhook_id}/deliveries", **paginated(WebhookDeliveryOut))
async def list_deliveries(
    webhook_id: IdPath, conn: TransactionDep, user: CurrentUser, page: PageDep
) -> list[WebhookDeliveryOut]:
    """Newest first: status, attempts, the last error and response code."""
    records, total = await webhooks.deliveries(
        conn, user, webhook_id, limit=page.limit, offset=page.offset
    )
    return page.answer([delivery_out(r) for r in records], total)


def describe_deliveries(app: FastAPI) -> None:
    """What Waybill POSTs to a subscription's URL (OpenAPI 3.1 `webhooks`)."""

    @app.webhooks.post("task-event", tags=["webhooks"], status_code=204)
    def task_event(
        body: WebhookMessage,
        webhook_id: Annotated[str, Header(description="the message, the same on every attempt")],
        webhook_timestamp: Annotated[str, Header(description="when sent, in Unix seconds")],
        webhook_signature: Annotated[
            str,
            Header(
                description="`v1,` and base64 of HMAC-SHA256 over `id.timestamp.body`, keyed "
                "with the secret's bytes (base64 after `whsec_`)"
            ),
        ],
    ) -> None:
        """A task event you subscribed to, or a test. Answer 2xx within the timeout
        (10 s): anything else, or no answer, is retried with backoff for 24 hours.
        Deliveries are at least once: drop a `webhook-id` you have already seen."""
