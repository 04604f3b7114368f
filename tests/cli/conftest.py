"""Fixtures for the CLI tests (the runner itself: support/cli.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.cli import Waybill, new_key
from support.stack import Stack


@pytest.fixture
def make_waybill(tmp_path: Path) -> Callable[[str], Waybill]:
    """A waybill for a fresh home directory (its own config), not logged in."""
    count = iter(range(100))
    return lambda name="user": Waybill(tmp_path / f"{name}-{next(count)}")


@pytest.fixture
def waybill(stack: Stack, make_waybill: Callable[[str], Waybill]) -> Waybill:
    """A new user's waybill, logged in to the session's gateway."""
    cli = make_waybill("user")
    login = cli("login", "--url", stack.gateway_url, "--key", new_key(stack))
    assert login.code == 0, login.stderr
    return cli
