"""Linked identities on `GET /v1/users/me`, and unlinking them while another way to sign in remains."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from tests.fixtures.assertions import assert_error, assert_not_found
from tests.fixtures.auth import Api
from tests.fixtures.oauth_provider import StandInProvider
from tests.oauth.conftest import Browser, fragment

LAST_METHOD = "This is your only way to sign in. Set a password (forgot-password) or link another provider first."
JWT_ONLY = "This action needs a signed-in user (a JWT), not an API key."
IDENTITY_NOT_FOUND = "Identity not found."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def identities(browser: Browser, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await browser.app.get("/v1/users/me", headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["identities"]
    return found


async def sign_in(browser: Browser, provider: StandInProvider, name: str, subject: str) -> dict[str, str]:
    provider.account.subject = subject
    return bearer(fragment(await browser.sign_in(name))["access_token"])


async def test_me_lists_every_linked_provider_oldest_first(browser: Browser, provider: StandInProvider) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    await sign_in(browser, provider, "github", "222")
    await sign_in(browser, provider, "microsoft", "333")

    listed = await identities(browser, headers)

    assert [(i["provider"], i["email"]) for i in listed] == [
        ("google", "ada@example.com"),
        ("github", "ada@example.com"),
        ("microsoft", "ada@example.com"),
    ]
    assert set(listed[0]) == {"id", "provider", "email", "created_at"}  # never the provider's subject


async def test_me_with_an_api_key_lists_no_identities(browser: Browser, provider: StandInProvider) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    created = await browser.app.post("/v1/api-keys", json={"name": "k", "scopes": ["read"]}, headers=headers)
    assert created.status_code == 201, created.text

    assert await identities(browser, bearer(created.json()["key"])) == []


async def test_the_only_identity_of_a_user_without_a_password_cannot_be_unlinked(
    browser: Browser, provider: StandInProvider
) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    (identity,) = await identities(browser, headers)

    response = await browser.app.delete(f"/v1/users/me/identities/{identity['id']}", headers=headers)

    assert_error(response, 409, "CONFLICT", LAST_METHOD)
    assert await identities(browser, headers) == [identity]


async def test_an_identity_can_be_unlinked_while_another_remains(browser: Browser, provider: StandInProvider) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    await sign_in(browser, provider, "github", "222")
    google, github = await identities(browser, headers)

    response = await browser.app.delete(f"/v1/users/me/identities/{google['id']}", headers=headers)

    assert response.status_code == 204, response.text
    assert await identities(browser, headers) == [github]
    last = await browser.app.delete(f"/v1/users/me/identities/{github['id']}", headers=headers)
    assert_error(last, 409, "CONFLICT", LAST_METHOD)
    # Signing in with Google again links it again (by the verified email).
    again = await sign_in(browser, provider, "google", "111")
    assert [i["provider"] for i in await identities(browser, again)] == ["github", "google"]


async def test_a_user_with_a_password_can_unlink_their_last_identity(
    api: Api, browser: Browser, provider: StandInProvider, settings: Settings
) -> None:
    account = await api.register("ada@example.com")
    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET email_verified_at = now()"))
    await engine.dispose()
    await sign_in(browser, provider, "microsoft", "333")
    (identity,) = await identities(browser, account.headers)

    response = await browser.app.delete(f"/v1/users/me/identities/{identity['id']}", headers=account.headers)

    assert response.status_code == 204, response.text
    assert await identities(browser, account.headers) == []
    login = await browser.app.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status_code == 200


async def test_another_users_identity_is_not_found(api: Api, browser: Browser, provider: StandInProvider) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    await sign_in(browser, provider, "github", "222")
    (google, _) = await identities(browser, headers)
    stranger = await api.register("grace@example.com")

    response = await browser.app.delete(f"/v1/users/me/identities/{google['id']}", headers=stranger.headers)

    assert_not_found(response, IDENTITY_NOT_FOUND)
    assert len(await identities(browser, headers)) == 2


@pytest.mark.parametrize("identity_id", ["7d3f5c1e-2b4a-4c6d-8e9f-0a1b2c3d4e5f", "not-a-uuid", "1"])
async def test_an_unknown_or_malformed_identity_id_is_not_found(
    browser: Browser, provider: StandInProvider, identity_id: str
) -> None:
    headers = await sign_in(browser, provider, "google", "111")

    response = await browser.app.delete(f"/v1/users/me/identities/{identity_id}", headers=headers)

    if identity_id == "not-a-uuid" or identity_id == "1":
        assert_not_found(response)
    else:
        assert_not_found(response, IDENTITY_NOT_FOUND)


async def test_unlinking_needs_a_signed_in_user(browser: Browser, provider: StandInProvider) -> None:
    headers = await sign_in(browser, provider, "google", "111")
    await sign_in(browser, provider, "github", "222")
    (google, _) = await identities(browser, headers)
    created = await browser.app.post(
        "/v1/api-keys", json={"name": "k", "scopes": ["read", "write", "admin"]}, headers=headers
    )

    with_key = await browser.app.delete(
        f"/v1/users/me/identities/{google['id']}", headers=bearer(created.json()["key"])
    )
    anonymous = await browser.app.delete(f"/v1/users/me/identities/{google['id']}")

    assert_error(with_key, 403, "FORBIDDEN", JWT_ONLY)
    assert anonymous.status_code == 401
    assert len(await identities(browser, headers)) == 2
