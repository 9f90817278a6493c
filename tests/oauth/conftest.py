"""The stand-in provider on loopback, settings pointing at it, and a browser that follows the redirects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from backplane.core.config import OAuthSettings, Settings
from tests.fixtures.http_server import LoopbackServer, serve
from tests.fixtures.oauth_provider import CLIENTS, StandInProvider

FRONTEND = "https://app.example.com/auth/callback"
OTHER_FRONTEND = "https://admin.example.com/oauth/done?tab=security"
APP = "http://testserver"


@pytest.fixture(scope="session")
def provider_session() -> Iterator[tuple[StandInProvider, LoopbackServer]]:
    provider = StandInProvider()
    with serve(provider.app, name="oauth-provider") as server:
        yield provider, server


@pytest.fixture
def provider(provider_session: tuple[StandInProvider, LoopbackServer]) -> StandInProvider:
    provider_session[0].reset()
    return provider_session[0]


@pytest.fixture
def settings(
    settings: Settings, provider: StandInProvider, provider_session: tuple[StandInProvider, LoopbackServer]
) -> Settings:
    """Every provider configured and pointed at the stand-in (which starts each test afresh)."""
    url = provider_session[1].url
    settings.oauth = OAuthSettings(
        google_client_id=CLIENTS["google"][0],
        google_client_secret=CLIENTS["google"][1],
        microsoft_client_id=CLIENTS["microsoft"][0],
        microsoft_client_secret=CLIENTS["microsoft"][1],
        github_client_id=CLIENTS["github"][0],
        github_client_secret=CLIENTS["github"][1],
        google_oauth_base_url=url,
        microsoft_oauth_base_url=url,
        github_oauth_base_url=url,
        oauth_redirect_allowlist=f"{FRONTEND}, {OTHER_FRONTEND}",
        oauth_frontend_callback_url=FRONTEND,
    )
    return settings


class Browser:
    """One browser (one cookie jar for the app) going through the redirect dance.

    The app is reached in-process (ASGI); the provider is a real server, reached over HTTP.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP)
        self.web = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self.app.aclose()
        await self.web.aclose()

    async def start(self, provider: str, **params: str) -> httpx.Response:
        return await self.app.get(f"/v1/auth/oauth/{provider}", params=params)

    async def authorize(self, started: httpx.Response) -> str:
        """At the provider: the user signs in; returns the callback URL it sends the browser to."""
        assert started.status_code == 302, started.text
        at_provider = await self.web.get(started.headers["location"])
        assert at_provider.status_code == 302, at_provider.text
        callback = at_provider.headers["location"]
        assert callback.startswith(f"{APP}/v1/auth/oauth/"), callback
        return callback

    async def callback(self, url: str) -> httpx.Response:
        return await self.app.get(url)

    async def sign_in(self, provider: str, **params: str) -> httpx.Response:
        """The whole dance; the app's last answer (a redirect to the frontend)."""
        return await self.callback(await self.authorize(await self.start(provider, **params)))


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Browser]:
    browser = Browser(app)
    yield browser
    await browser.aclose()


@pytest.fixture
async def other_browser(app: FastAPI) -> AsyncIterator[Browser]:
    browser = Browser(app)
    yield browser
    await browser.aclose()


def fragment(response: httpx.Response) -> dict[str, str]:
    """The tokens of a signed-in redirect: `<frontend>#access_token=...`."""
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    return {k: v[0] for k, v in parse_qs(location.fragment, strict_parsing=True).items()}


def landing(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a redirect lands: the URL without query or fragment, and its query parameters."""
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert location.fragment == "", "an error redirect must not carry tokens"
    base = f"{location.scheme}://{location.netloc}{location.path}"
    return base, {k: v[0] for k, v in parse_qs(location.query).items()}
