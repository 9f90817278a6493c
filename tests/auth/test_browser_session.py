"""`/v1/auth/session`: the dashboard's sign-in, the refresh token in an httpOnly cookie, CSRF by double submit."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from tests.auth.helpers import (
    ACCESS_REVOKED,
    BAD_CREDENTIALS,
    REFRESH_INVALID,
    REFRESH_REVOKED,
    assert_platform_error,
    bearer,
)
from tests.fixtures.auth import PASSWORD, Api

SESSION = "/v1/auth/session"
REFRESH = "/v1/auth/session/refresh"
ME = "/v1/users/me"
CSRF_FAILED = (
    "The request failed the CSRF check: send the `bp_csrf` cookie's value in the `X-CSRF-Token` header, "
    "from a page of this service."
)
CROSS_SITE = "The request comes from a page of another site."
NO_SESSION = "No browser session: the `bp_refresh` cookie is missing. Sign in again."


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """Each Set-Cookie of `response` by name: its value and attributes (lower-cased names)."""
    cookies: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            flags = {part.strip().lower() for part in header.split(";")[1:]}
            cookies[name] = {
                "value": morsel.value,
                "path": morsel["path"],
                "max-age": morsel["max-age"],
                "samesite": morsel["samesite"],
                "httponly": "httponly" in flags,
                "secure": "secure" in flags,
            }
    return cookies


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> tuple[dict[str, Any], dict]:  # type: ignore[type-arg]
    response = await client.post(SESSION, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # each test sends the cookies it means to, by hand
    return response.json(), set_cookies(response)


def browser(cookies: dict[str, Any], *, csrf: str | None = None, **headers: str) -> dict[str, str]:
    """Headers of a request from the dashboard's page: both cookies, and the CSRF token (or `csrf`)."""
    sent = {
        "Cookie": f"bp_refresh={cookies['bp_refresh']['value']}; bp_csrf={cookies['bp_csrf']['value']}",
        "X-CSRF-Token": cookies["bp_csrf"]["value"] if csrf is None else csrf,
    }
    return {**sent, **headers}


async def test_sign_in_answers_an_access_token_and_sets_the_two_cookies(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()

    response = await client.post(SESSION, json={"email": account.email, "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["user"]["id"] == account.user_id and body["user"]["email"] == account.email
    assert body["user"]["is_staff"] is False
    assert response.headers["Cache-Control"] == "no-store"
    cookies = set_cookies(response)
    assert cookies["bp_refresh"] == {
        "value": cookies["bp_refresh"]["value"],
        "path": "/v1/auth/session",
        "max-age": "604800",
        "samesite": "strict",
        "httponly": True,
        "secure": False,  # http://testserver, PUBLIC_BASE_URL http
    }
    assert cookies["bp_csrf"] == {
        "value": cookies["bp_csrf"]["value"],
        "path": "/",
        "max-age": "604800",
        "samesite": "strict",
        "httponly": False,
        "secure": False,
    }
    assert cookies["bp_refresh"]["value"] not in response.text  # the refresh token never in the body
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["id"] == account.user_id


@pytest.mark.parametrize("how", ["public https", "request https"])
async def test_the_cookies_are_secure_over_https(api: Api, app: Any, settings: Any, how: str) -> None:
    if how == "public https":
        settings.public_base_url = "https://dashboard.example.com"
    base = "https://testserver" if how == "request https" else "http://testserver"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        account = await Api(client).register()
        response = await client.post(SESSION, json={"email": account.email, "password": PASSWORD})

    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    assert cookies["bp_refresh"]["secure"] and cookies["bp_csrf"]["secure"]


async def test_wrong_credentials_and_a_deactivated_user_get_no_session(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    wrong = await client.post(SESSION, json={"email": account.email, "password": "not-the-password"})
    assert_platform_error(wrong, 401, "UNAUTHORIZED", BAD_CREDENTIALS)
    assert "set-cookie" not in wrong.headers

    assert (await client.delete(ME, headers=account.headers)).status_code == 204
    gone = await client.post(SESSION, json={"email": account.email, "password": PASSWORD})
    assert_platform_error(gone, 401, "UNAUTHORIZED", BAD_CREDENTIALS)


async def test_a_malformed_sign_in_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(SESSION, json={"email": "not-an-email"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert set(response.json()["error"]["details"]["fields"]) == {"email", "password"}


async def test_refresh_with_the_cookie_and_the_csrf_header_gives_a_new_access_token(
    api: Api, client: httpx.AsyncClient
) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)

    response = await client.post(REFRESH, headers=browser(cookies, Origin="http://testserver"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert "set-cookie" not in response.headers
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["email"] == account.email


async def test_refresh_from_the_public_base_url_origin_or_a_same_site_referer_works(
    api: Api, client: httpx.AsyncClient, settings: Any
) -> None:
    settings.public_base_url = "http://127.0.0.1:8000"
    account = await api.register()
    _, cookies = await sign_in(client, account.email)

    for headers in ({"Origin": "http://127.0.0.1:8000"}, {"Referer": "http://testserver/dashboard/keys"}):
        response = await client.post(REFRESH, headers=browser(cookies, **headers))
        assert response.status_code == 200, (headers, response.text)


async def test_refresh_without_or_with_a_forged_csrf_token_is_refused(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)
    refresh = cookies["bp_refresh"]["value"]
    csrf = cookies["bp_csrf"]["value"]
    _, other = await sign_in(client, account.email)  # another sign-in's pair, valid on its own

    attempts = {
        "no header": {"Cookie": f"bp_refresh={refresh}; bp_csrf={csrf}"},
        "no csrf cookie": {"Cookie": f"bp_refresh={refresh}", "X-CSRF-Token": csrf},
        "header differs": browser(cookies, csrf=csrf[:-1] + ("A" if csrf[-1] != "A" else "B")),
        "empty header": browser(cookies, csrf=""),
        "planted pair": {"Cookie": f"bp_refresh={refresh}; bp_csrf=planted.0000", "X-CSRF-Token": "planted.0000"},
        "another sign-in's token": {
            "Cookie": f"bp_refresh={refresh}; bp_csrf={other['bp_csrf']['value']}",
            "X-CSRF-Token": other["bp_csrf"]["value"],
        },
    }
    for name, headers in attempts.items():
        response = await client.post(REFRESH, headers=headers)
        assert response.status_code == 403, name
        assert_platform_error(response, 403, "CSRF_FAILED", CSRF_FAILED)


async def test_refresh_from_a_page_of_another_site_is_refused(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)

    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Referer": "https://evil.example/page"},
    ):
        response = await client.post(REFRESH, headers=browser(cookies, **headers))
        assert_platform_error(response, 403, "CSRF_FAILED", CROSS_SITE)


async def test_refresh_without_a_valid_refresh_cookie_is_unauthorized(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)
    csrf = cookies["bp_csrf"]["value"]

    missing = await client.post(REFRESH, headers={"Cookie": f"bp_csrf={csrf}", "X-CSRF-Token": csrf})
    assert_platform_error(missing, 401, "UNAUTHORIZED", NO_SESSION)
    garbage = await client.post(
        REFRESH, headers={"Cookie": f"bp_refresh=not-a-jwt; bp_csrf={csrf}", "X-CSRF-Token": csrf}
    )
    assert_platform_error(garbage, 401, "UNAUTHORIZED", REFRESH_INVALID)
    # An access token is not a refresh token.
    body, _ = await sign_in(client, account.email)
    swapped = await client.post(
        REFRESH,
        headers={"Cookie": f"bp_refresh={body['access_token']}; bp_csrf={csrf}", "X-CSRF-Token": csrf},
    )
    assert_platform_error(swapped, 401, "UNAUTHORIZED", REFRESH_INVALID)


async def test_an_oversized_csrf_header_is_a_validation_error(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)

    response = await client.post(REFRESH, headers=browser(cookies, csrf="x" * 300))

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_sign_out_revokes_the_tokens_and_clears_both_cookies(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    body, cookies = await sign_in(client, account.email)
    refreshed = await client.post(REFRESH, headers=browser(cookies))
    assert refreshed.status_code == 200

    response = await client.delete(SESSION, headers=browser(cookies, Origin="http://testserver"))

    assert response.status_code == 204, response.text
    assert response.content == b""
    cleared = set_cookies(response)
    assert cleared["bp_refresh"]["max-age"] == "0" and cleared["bp_refresh"]["path"] == "/v1/auth/session"
    assert cleared["bp_refresh"]["httponly"] and cleared["bp_refresh"]["samesite"] == "strict"
    assert cleared["bp_csrf"]["max-age"] == "0" and cleared["bp_csrf"]["path"] == "/"
    assert cleared["bp_refresh"]["value"] == "" and cleared["bp_csrf"]["value"] == ""
    # The refresh cookie, the access token of the sign-in and the one refreshed from it are all dead.
    again = await client.post(REFRESH, headers=browser(cookies))
    assert_platform_error(again, 401, "UNAUTHORIZED", REFRESH_REVOKED)
    for token in (body["access_token"], refreshed.json()["access_token"]):
        assert_platform_error(await client.get(ME, headers=bearer(token)), 401, "UNAUTHORIZED", ACCESS_REVOKED)
    # Signing out again still clears the cookies.
    twice = await client.delete(SESSION, headers=browser(cookies))
    assert twice.status_code == 204 and set(set_cookies(twice)) == {"bp_refresh", "bp_csrf"}


async def test_sign_out_needs_the_csrf_token_and_revokes_nothing_without_it(
    api: Api, client: httpx.AsyncClient
) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)

    forged = await client.delete(SESSION, headers=browser(cookies, csrf="forged"))
    assert_platform_error(forged, 403, "CSRF_FAILED", CSRF_FAILED)
    cross = await client.delete(SESSION, headers=browser(cookies, Origin="https://evil.example"))
    assert_platform_error(cross, 403, "CSRF_FAILED", CROSS_SITE)
    assert "set-cookie" not in forged.headers and "set-cookie" not in cross.headers

    assert (await client.post(REFRESH, headers=browser(cookies))).status_code == 200


async def test_a_deactivated_user_cannot_refresh(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    body, cookies = await sign_in(client, account.email)

    assert (await client.delete(ME, headers=bearer(body["access_token"]))).status_code == 204

    response = await client.post(REFRESH, headers=browser(cookies))
    assert_platform_error(response, 401, "UNAUTHORIZED", REFRESH_REVOKED)


async def test_refresh_is_not_held_to_the_sign_in_limit(api: Api, client: httpx.AsyncClient, settings: Any) -> None:
    account = await api.register()
    _, cookies = await sign_in(client, account.email)
    settings.rate_limits_enabled = True

    for _ in range(8):  # a page load per tab: past the sign-in limit of 5 a minute
        response = await client.post(REFRESH, headers=browser(cookies))
        assert response.status_code == 200, response.text
    assert response.headers["X-RateLimit-Limit"] == "60"
    for _ in range(6):
        await client.post(SESSION, json={"email": account.email, "password": "wrong-password"})
    limited = await client.post(SESSION, json={"email": account.email, "password": PASSWORD})
    assert limited.status_code == 429  # signing in is, as on /v1/auth/login
