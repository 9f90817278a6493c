"""Signing in to the dashboard with a provider: it lands on /dashboard/ with the browser session's cookies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth.test_browser_session import browser as from_the_page
from tests.auth.test_browser_session import set_cookies
from tests.oauth.conftest import Browser, landing

REFRESH = "/v1/auth/session/refresh"


@pytest.mark.parametrize(
    ("redirect_uri", "lands_on"),
    [
        ("/dashboard/", "/dashboard/"),
        ("/dashboard/settings/profile?tab=identities", "/dashboard/settings/profile?tab=identities"),
        ("http://testserver/dashboard/keys", "/dashboard/keys"),
    ],
)
async def test_the_dashboard_gets_the_session_cookies_and_no_token_in_the_url(
    browser: Browser, redirect_uri: str, lands_on: str
) -> None:
    response = await browser.sign_in("github", redirect_uri=redirect_uri)

    assert response.status_code == 302, response.text
    assert response.headers["location"] == lands_on
    assert "token" not in response.headers["location"]
    cookies = set_cookies(response)
    assert cookies["bp_refresh"]["httponly"] and cookies["bp_refresh"]["path"] == "/v1/auth/session"
    assert cookies["bp_refresh"]["samesite"] == "strict" and cookies["bp_refresh"]["max-age"] == "604800"
    assert not cookies["bp_csrf"]["httponly"] and cookies["bp_csrf"]["path"] == "/"
    assert "backplane_refresh_token" not in cookies and "backplane_access_token" not in cookies
    # The page then asks for an access token with its cookies and the CSRF header.
    refreshed = await browser.app.post(REFRESH, headers=from_the_page(cookies))
    assert refreshed.status_code == 200, refreshed.text
    me = await browser.app.get("/v1/users/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert me.json()["identities"][0]["provider"] == "github"


async def test_a_failed_dashboard_sign_in_lands_on_the_dashboard_with_the_error(browser: Browser, app: Any) -> None:
    started = await browser.start("google", redirect_uri="/dashboard/sign-in")
    callback = await browser.authorize(started)

    response = await browser.callback(callback.replace("code=", "code=forged"))

    _, query = landing(response)
    assert response.headers["location"].split("?")[0] == "/dashboard/sign-in"
    assert query["error"] == "invalid_grant"
    assert "bp_refresh" not in set_cookies(response)


async def test_the_configured_providers_are_listed_without_starting_a_sign_in(
    browser: Browser, app: Any, settings: Any
) -> None:
    response = await browser.app.get("/v1/auth/oauth/providers")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "providers": [
            {"id": "google", "name": "Google"},
            {"id": "microsoft", "name": "Microsoft"},
            {"id": "github", "name": "GitHub"},
        ]
    }
    assert "set-cookie" not in response.headers
    assert await app.state.redis.keys("*oauth*") == []

    settings.oauth.github_client_secret = None
    settings.oauth.google_client_id = None
    listed = await browser.app.get("/v1/auth/oauth/providers")
    assert listed.json() == {"providers": [{"id": "microsoft", "name": "Microsoft"}]}
