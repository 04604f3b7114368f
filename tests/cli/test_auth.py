"""waybill login/whoami/logout: the config file, the environment's override, and the
exit codes of a refused key and an unreachable gateway."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable

from support.cli import Waybill, new_key
from support.stack import Stack, free_port


def test_login_checks_the_key_and_stores_it_for_the_owner_only(
    stack: Stack, make_waybill: Callable[[str], Waybill]
) -> None:
    cli = make_waybill("login")
    refused = cli("login", "--url", stack.gateway_url, "--key", "not-a-key")
    assert refused.code == 4, refused
    assert "API key was refused" in refused.error_line
    assert not cli.config_file.exists()

    key = new_key(stack)
    # The key from stdin, as `waybill login < key.txt` (not in the process list).
    login = cli("login", "--url", stack.gateway_url + "/", "--json", stdin=key + "\n")
    assert login.code == 0, login.stderr
    assert login.json()["url"] == stack.gateway_url
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    assert tomllib.loads(cli.config_file.read_text()) == {"url": stack.gateway_url, "api_key": key}

    me = cli("whoami", "--json")
    assert me.code == 0, me.stderr
    assert me.json()["user"]["name"] == login.json()["user"]["name"]
    assert (me.json()["url_from"], me.json()["key_from"]) == ("config file", "config file")


def test_the_environment_overrides_the_config_file(waybill: Waybill, stack: Stack) -> None:
    wrong_key = waybill("whoami", WAYBILL_API_KEY="revoked-or-wrong")
    assert wrong_key.code == 4
    assert "API key was refused" in wrong_key.error_line

    nobody_listens = f"http://127.0.0.1:{free_port()}"
    unreachable = waybill("export", "list", WAYBILL_URL=nobody_listens)
    assert unreachable.code == 3
    assert f"cannot reach {nobody_listens}" in unreachable.error_line

    admin = waybill("whoami", "--json", WAYBILL_API_KEY="test-admin-key")
    assert admin.code == 0 and admin.json()["user"]["is_admin"] is True
    assert admin.json()["key_from"] == "environment"


def test_logout_forgets_the_key(waybill: Waybill) -> None:
    assert waybill("logout").code == 0
    after = waybill("export", "list")
    assert after.code == 4
    assert "no API key" in after.error_line
    assert "api_key" not in waybill.config_file.read_text()
