"""waybill webhooks against the real stack: subscribe, test, read the delivery log,
delete; a refused URL and someone else's webhook exit as the API's answers say."""

from __future__ import annotations

from collections.abc import Callable

from support.cli import Waybill, new_key
from support.stack import Stack, wait_for


def test_subscribe_test_follow_and_delete(waybill: Waybill) -> None:
    # Nobody listens on port 9: the test delivery fails, and the log says why.
    created = waybill(
        "webhooks", "create", "http://127.0.0.1:9/hooks", "-e", "completed", "-e", "failed",
        "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    hook = created.json()
    assert hook["events"] == ["completed", "failed"] and hook["secret"].startswith("whsec_")

    shown = waybill("webhooks", "list")
    assert shown.code == 0 and "127.0.0.1:9/hooks" in shown.stdout
    assert "completed,failed" in shown.stdout

    tested = waybill("webhooks", "test", str(hook["id"]), "--json")
    assert tested.code == 0, tested.stderr
    assert tested.json()["event"] == "test"

    def failed_once() -> list[dict] | None:
        log = waybill("webhooks", "deliveries", str(hook["id"]), "--json").json()
        return log if log and log[0]["last_error"] else None

    [delivery] = wait_for(failed_once, timeout=30, message="a failed test delivery")
    assert delivery["status"] == "pending" and delivery["attempts"] >= 1
    table = waybill("webhooks", "deliveries", str(hook["id"]))
    assert "test" in table.stdout and "pending" in table.stdout

    assert waybill("webhooks", "enable", str(hook["id"]), "--json").json()["enabled"] is True
    deleted = waybill("webhooks", "delete", str(hook["id"]))
    assert deleted.code == 0 and f"webhook {hook['id']} deleted" in deleted.stdout
    assert waybill("webhooks", "list", "--json").json() == []


def test_refusals_and_other_peoples_webhooks(
    stack: Stack, waybill: Waybill, make_waybill: Callable[[str], Waybill]
) -> None:
    refused = waybill("webhooks", "create", "http://10.0.0.1/hooks")
    assert refused.code == 2
    assert "10.0.0.1 is refused: a private address" in refused.error_line

    hook = waybill("webhooks", "create", "http://127.0.0.1:9/hooks", "--json").json()
    assert hook["events"] == ["all"]
    other = make_waybill("other")
    assert other("login", "--url", stack.gateway_url, "--key", new_key(stack)).code == 0
    for command in ("delete", "test", "deliveries", "enable"):
        theirs = other("webhooks", command, str(hook["id"]))
        assert theirs.code == 1, (command, theirs.stderr)
        assert f"webhook {hook['id']} not found" in theirs.error_line
