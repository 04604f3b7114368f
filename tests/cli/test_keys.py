"""waybill keys create/list/revoke and waybill usage, against the session's gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from support.cli import Waybill
from support.stack import Stack, wait_for


def test_keys_create_list_revoke(waybill: Waybill, stack: Stack) -> None:
    made = waybill("keys", "create", "ci", "--expires-in", "30d", "--json")
    assert made.code == 0, made.stderr
    created = made.json()
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    # For people: the key alone on stdout (to pipe or copy), the rest on stderr.
    plain = waybill("keys", "create", "laptop")
    assert plain.code == 0, plain.stderr
    laptop_key = plain.stdout.strip()
    assert laptop_key.startswith("wb_") and "shown this once" in plain.stderr
    me = waybill("whoami", "--json", WAYBILL_API_KEY=laptop_key)
    assert me.code == 0, me.stderr

    listed = waybill("keys", "list", "--json")
    assert [k["name"] for k in listed.json()] == ["default", "ci", "laptop"]
    table = waybill("keys", "list")
    assert "laptop" in table.stdout and laptop_key not in table.stdout

    laptop_id = listed.json()[2]["id"]
    assert waybill("keys", "revoke", str(laptop_id)).code == 0
    refused = wait_for(
        lambda: (r := waybill("whoami", WAYBILL_API_KEY=laptop_key)).code == 4 and r,
        timeout=5,
        message="the revoked key to be refused",
    )
    assert "API key was refused" in refused.error_line
    again = waybill("keys", "revoke", str(laptop_id))
    assert again.code == 1 and f"API key {laptop_id} not found" in again.error_line

    twice = waybill("keys", "create", "ci")
    assert twice.code == 1 and "already have a key named 'ci'" in twice.error_line
    bad = waybill("keys", "create", "x", "--expires-in", "soon")
    assert bad.code == 2 and "is not like 30d" in bad.error_line


def test_usage(waybill: Waybill) -> None:
    (waybill.cwd / "a.csv").write_bytes(b"a,b\n1,2\n")
    assert waybill("upload", "a.csv").code == 0
    used = waybill("usage", "--json")
    assert used.code == 0, used.stderr
    assert used.json()["stored_bytes"]["used"] == 8
    assert used.json()["running_exports"]["limit"] == 1000
    table = waybill("usage")
    assert "stored bytes" in table.stdout and "8 B" in table.stdout
