"""Debian's Chromium driven by Playwright (never a browser of the tool's own download), on
the dashboard tests' live service. Without /usr/bin/chromium the tests skip, except in CI
(`CI` set), where they fail: `.ci/system-packages.sh` installs it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from host.settings import Scope
from tests.api.conftest import KEYS
from tests.dashboard.conftest import live
from tests.dashboard.server import BASE, LiveServer
from tests.databases import IN_CI

CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_WAIT_MS = 3000
"""An open page shows a change within this long, without reloading."""

__all__ = ["live"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-wide: Playwright's sync API runs an event loop in this thread while it is open,
    which the asyncio tests that follow must not find."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (bash .ci/system-packages.sh installs it)"
        if IN_CI:
            pytest.fail(f"{reason}; CI needs the browser tests")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield found
        found.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory, summary_lines: list[str]) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    summary_lines.append(f"dashboard screenshots: {folder}")
    return folder


@dataclass
class Visit:
    """A browser tab, with the console errors it logged."""

    page: Page
    live: LiveServer
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        self.page.goto(self.live.url + BASE + path)

    def sign_in_with_the_form(self, scope: Scope) -> None:
        self.go("/login")
        self.page.fill('input[name="api_key"]', KEYS[scope])
        self.page.click('button[type="submit"]')
        self.page.wait_for_url(f"**{BASE}")

    def sign_in(self, scope: Scope) -> None:
        """Hold a session of `scope`, got by the sign-in form's POST outside the browser (the
        form itself is tested once; this saves each test a page load)."""
        client, _ = self.live.signed_in(scope)
        value = client.cookies["jobs_session"]
        cookie = {"name": "jobs_session", "value": value, "url": self.live.url + BASE}
        self.page.context.add_cookies([cookie])  # type: ignore[list-item]


def _console(errors: list[str]) -> Callable[[ConsoleMessage], None]:
    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    return record


@pytest.fixture
def visit(browser: Browser, live: LiveServer) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    found = Visit(page=page, live=live)
    page.on("console", _console(found.errors))
    page.on("pageerror", lambda error: found.errors.append(str(error)))
    yield found
    context.close()
