"""Driving the web UI in Debian's headless chromium (tests/ui): the browser's path,
signing in, and the person a test acts as."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import httpx
from playwright.sync_api import Page, expect


def chromium_path() -> str:
    path = os.environ.get("WAYBILL_CHROMIUM") or shutil.which("chromium")
    assert path, "Debian's chromium is needed: apt-get install chromium (scripts/test.sh does)"
    return path


@dataclass
class Person:
    """A user of their own: their API client, their key, and a signed-in page."""

    api: httpx.Client
    key: str
    page: Page


def sign_in(page: Page, key: str, path: str = "/exports") -> None:
    page.goto(path)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def no_horizontal_overflow(page: Page) -> None:
    """Nothing is wider than the viewport (no sideways scrolling)."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"
