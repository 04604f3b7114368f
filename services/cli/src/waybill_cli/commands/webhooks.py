"""webhooks create/list/enable/delete/test/deliveries: subscriptions to your
tasks' events (POSTed to your URL, signed; see docs/API.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from waybill_cli.common import AllOpt, JsonOpt, LimitOpt, OffsetOpt, connect
from waybill_cli.display import Output, when

webhooks_app = typer.Typer(
    help="Webhooks: your task events POSTed to a URL of yours, signed (Standard Webhooks).",
    no_args_is_help=True,
)

EVENTS = ("completed", "failed", "cancelled", "expired", "progress", "all")
WEBHOOK_COLUMNS = ("id", "url", "events", "state", "failures")
DELIVERY_COLUMNS = ("id", "event", "task", "status", "attempts", "code", "last error")


def webhook_row(h: dict[str, Any]) -> list[Any]:
    state = "enabled" if h["enabled"] else "disabled"
    return [h["id"], h["url"], ",".join(h["events"]), state, h["consecutive_failures"]]


def show_webhooks(out: Output, hooks: list[dict[str, Any]], **page: Any) -> None:
    """The table, then why each disabled one was disabled (the reason is long)."""
    rows = [webhook_row(h) for h in hooks]
    if page:
        out.page(WEBHOOK_COLUMNS, rows, **page)
    else:
        out.table(WEBHOOK_COLUMNS, rows)
    for h in hooks:
        if h.get("disabled_reason"):
            out.say(f"webhook {h['id']} disabled {when(h['disabled_at'])}: {h['disabled_reason']}")


def delivery_row(d: dict[str, Any]) -> list[Any]:
    error = d.get("last_error") or ""
    return [
        d["id"],
        d["event"],
        (d.get("task_id") or "")[:8],
        d["status"],
        d["attempts"],
        d.get("response_code") or "",
        error if len(error) <= 60 else error[:59] + "…",
    ]


@webhooks_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="Where to POST: http(s), a public address.")],
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            help=f"An event to hear, repeatable: {', '.join(EVENTS)} (default: all).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="Your own signing secret (whsec_...); one is made when absent."),
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Subscribe URL to your task events. Prints the signing secret, this once."""
    out = Output(json_mode=json_mode)
    body: dict[str, Any] = {"url": url, "events": event or ["all"]}
    if secret is not None:
        body["secret"] = secret
    with connect() as api:
        hook = api.create_webhook(body)

    def human() -> None:
        show_webhooks(out, [hook])
        out.say(f"secret {hook['secret']}  (shown once: keep it to verify signatures)")

    out.result(hook, human)


@webhooks_app.command("list")
def list_webhooks(
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    all_items: AllOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List your webhooks (why one was disabled, if it was)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        page = api.webhooks(limit=limit, offset=offset, every=all_items)
    out.result(page.items, lambda: show_webhooks(out, page.items, total=page.total, offset=offset))


@webhooks_app.command("enable")
def enable(webhook_id: int, json_mode: JsonOpt = False) -> None:
    """Turn a disabled webhook on again: its waiting deliveries are sent."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        hook = api.update_webhook(webhook_id, {"enabled": True})
    out.result(hook, lambda: show_webhooks(out, [hook]))


@webhooks_app.command("delete")
def delete(webhook_id: int, json_mode: JsonOpt = False) -> None:
    """Delete a webhook and its delivery log."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        api.delete_webhook(webhook_id)
    out.result(
        {"webhook_id": webhook_id, "deleted": True},
        lambda: out.say(f"webhook {webhook_id} deleted"),
    )


@webhooks_app.command("test")
def test(webhook_id: int, json_mode: JsonOpt = False) -> None:
    """Send a test delivery (follow it with `waybill webhooks deliveries`)."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        delivery = api.test_webhook(webhook_id)
    out.result(
        delivery,
        lambda: out.say(
            f"test delivery {delivery['id']} queued ({delivery['message_id']}); see "
            f"`waybill webhooks deliveries {webhook_id}`"
        ),
    )


@webhooks_app.command("deliveries")
def deliveries(
    webhook_id: int,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    all_items: AllOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """A webhook's deliveries, newest first: status, attempts, last error and code."""
    out = Output(json_mode=json_mode)
    with connect() as api:
        page = api.webhook_deliveries(webhook_id, limit=limit, offset=offset, every=all_items)
    out.result(
        page.items,
        lambda: out.page(
            DELIVERY_COLUMNS, [delivery_row(d) for d in page.items], total=page.total, offset=offset
        ),
    )
