"""Session fixtures: real servers (see tests/support/stack.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.stack import Infra, Stack, start_infra, start_stack, stop_infra


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    infra = start_infra(tmp_path_factory.mktemp("waybill"))
    yield infra
    stop_infra(infra)


@pytest.fixture(scope="session")
def stack(infra: Infra) -> Iterator[Stack]:
    """The four services, running for the whole session."""
    stack = start_stack(infra)
    yield stack
    stack.stop()
