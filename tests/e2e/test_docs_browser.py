"""Headless Chromium opens /docs and /redoc of a real `backplane serve` with every other host cut off,
and finds the operations listed: the pages work where the service runs, without internet access.

Debian's Chromium (scripts/install-system-packages.sh installs it), driven by Playwright's Python package;
no browser is downloaded. Skipped only where /usr/bin/chromium is absent."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from backplane.core.config import Settings
from tests.fixtures.processes import backplane_processes

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        # `make test` installs it (scripts/install-system-packages.sh), so CI always runs these; only a
        # plain `pytest` on a machine without Debian's Chromium has no browser to open.
        reason=f"{CHROMIUM} is absent (make install puts it there)",
    ),
]


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
    }
    with backplane_processes(env, worker=False) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class _ClosedNetwork:
    """A page whose requests to any host but 127.0.0.1 are aborted (and remembered), and whose console
    errors (a Content Security Policy refusal, a failed load) are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.elsewhere: list[str] = []
        self.errors: list[str] = []

    async def open(self) -> _ClosedNetwork:
        await self.page.route("**/*", self._only_loopback)
        self.page.on("console", self._console)
        return self

    async def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.elsewhere.append(url)
            await route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


async def test_swagger_ui_lists_the_operations_with_the_network_closed(base_url: str, browser: Browser) -> None:
    network = await _ClosedNetwork(await browser.new_page()).open()
    await network.page.goto(f"{base_url}/docs")
    operations = network.page.locator(".opblock-summary-path")
    await operations.first.wait_for(timeout=30_000)
    paths = set(await operations.all_inner_texts())
    assert {"/api/v1/health/", "/v1/jobs", "/api/v1/auth/token/"} <= {path.replace("\u200b", "") for path in paths}
    assert network.elsewhere == []
    assert network.errors == []


async def test_redoc_lists_the_operations_with_the_network_closed(base_url: str, browser: Browser) -> None:
    network = await _ClosedNetwork(await browser.new_page()).open()
    await network.page.goto(f"{base_url}/redoc")
    await network.page.get_by_text("/api/v1/health/", exact=False).first.wait_for(state="attached", timeout=30_000)
    assert await network.page.locator("[data-section-id^='tag/']").count() > 0
    assert network.elsewhere == []
    assert network.errors == []
