"""The web UI in Debian's headless chromium (Python playwright, given the browser's
path: nothing downloads a browser), against the session's real stack. One browser per
module; a fresh context (no storage, so no key) per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from support.browser import Person, chromium_path, sign_in
from support.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def ui_built() -> None:
    """The build the gateway serves (quick when it is newer than the sources)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-ui.sh")], check=True)


@pytest.fixture(scope="module")
def browser(ui_built: None) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        playwright.selectors.set_test_id_attribute("data-test")
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(stack: Stack, browser: Browser) -> Iterator[Callable[..., Page]]:
    contexts = []

    def open_page(width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            base_url=stack.gateway_url,
            accept_downloads=True,
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def person(stack: Stack, open_page: Callable[..., Page]) -> Iterator[Person]:
    """A new user, signed in on a 1280 px page."""
    with stack.new_user(f"ui-{uuid.uuid4().hex[:8]}") as api:
        key = str(api.headers["Authorization"]).removeprefix("Bearer ")
        page = open_page()
        sign_in(page, key)
        yield Person(api, key, page)
