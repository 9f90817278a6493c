"""The full redirect dance against the stand-in provider: signing in, linking, and every way it can fail."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core import keys
from backplane.core.config import Settings
from tests.fixtures.assertions import assert_error, assert_invalid
from tests.fixtures.auth import Api
from tests.fixtures.oauth_provider import CLIENTS, StandInProvider
from tests.oauth.conftest import APP, FRONTEND, OTHER_FRONTEND, Browser, fragment, landing

PROVIDERS = ["google", "microsoft", "github"]
BAD_CREDENTIALS = "No active account found with the given credentials."
NOT_THIS_BROWSER = "This sign-in was not started in this browser, or it took too long. Sign in again."
ALREADY_USED = "This sign-in was already completed or has expired. Sign in again."
DISPLAY = {"google": "Google", "microsoft": "Microsoft", "github": "GitHub"}
REDIRECT_NOT_ALLOWED = (
    "This URL is not allowed; it must be one of OAUTH_REDIRECT_ALLOWLIST, or a page of this service's dashboard "
    "(/dashboard/...)."
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await client.get("/v1/users/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(settings: Settings, table: str) -> int:
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    finally:
        await engine.dispose()


async def execute(settings: Settings, sql: str, **params: Any) -> None:
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql), params)
    finally:
        await engine.dispose()


def assert_failed(response: httpx.Response, error: str, description: str, frontend: str = FRONTEND) -> None:
    base, query = landing(response)
    expected_base, expected_query = frontend.split("?")[0], dict(parse_qs(urlsplit(frontend).query))
    assert base == expected_base
    assert query == {**{k: v[0] for k, v in expected_query.items()}, "error": error, "error_description": description}


# --- starting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
async def test_start_sends_the_browser_to_the_provider_with_state_and_pkce(
    browser: Browser, provider: StandInProvider, settings: Settings, app: Any, name: str
) -> None:
    response = await browser.start(name)

    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    expected_path = {
        "google": "/o/oauth2/v2/auth",
        "microsoft": "/common/oauth2/v2.0/authorize",
        "github": "/login/oauth/authorize",
    }[name]
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"{settings.oauth.google_oauth_base_url}{expected_path}"
    )
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    state = params.pop("state")
    challenge = params.pop("code_challenge")
    assert len(state) >= 40 and len(challenge) == 43
    expected = {
        "response_type": "code",
        "client_id": CLIENTS[name][0],
        "redirect_uri": f"{APP}/v1/auth/oauth/{name}/callback",
        "scope": "read:user user:email" if name == "github" else "openid email profile",
        "code_challenge_method": "S256",
    }
    if name == "microsoft":
        expected["response_mode"] = "query"
    assert params == expected
    # The browser gets a short-lived, httpOnly cookie binding it to this state...
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("backplane_oauth_state=")
    for attribute in ("HttpOnly", "Max-Age=600", "Path=/v1/auth/oauth", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http in the tests
    # ...and Redis keeps the state (with the PKCE verifier) for 10 minutes.
    key = keys.oauth_state(hashlib.sha256(state.encode()).hexdigest())
    assert 0 < await app.state.redis.ttl(key) <= 600


async def test_two_starts_get_different_states(browser: Browser) -> None:
    first = parse_qs(urlsplit((await browser.start("google")).headers["location"]).query)
    second = parse_qs(urlsplit((await browser.start("google")).headers["location"]).query)
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


async def test_unknown_provider_is_a_404(browser: Browser) -> None:
    for path in ("/v1/auth/oauth/facebook", "/v1/auth/oauth/facebook/callback?code=x&state=y", "/v1/auth/oauth/GOOGLE"):
        response = await browser.app.get(path)
        assert_error(response, 404, "NOT_FOUND", "Unknown sign-in provider. Supported: google, microsoft, github.")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_unconfigured_provider_is_a_404(browser: Browser, settings: Settings, name: str) -> None:
    setattr(settings.oauth, f"{name}_client_secret", None)

    for path in (f"/v1/auth/oauth/{name}", f"/v1/auth/oauth/{name}/callback?code=x&state=y"):
        response = await browser.app.get(path)
        assert_error(
            response,
            404,
            "PROVIDER_NOT_CONFIGURED",
            f"Sign-in with {DISPLAY[name]} is not configured on this server.",
            {"provider": name},
        )
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.net/auth/callback",
        "https://app.example.com/auth/callback/",
        "https://app.example.com/auth/callback?next=https://evil.example.net",
        "https://app.example.com/auth/callback#x",
        "http://app.example.com/auth/callback",
        "https://app.example.com:8443/auth/callback",
        "https://APP.example.com/auth/callback",
        "https://app.example.com.evil.example.net/auth/callback",
        "https://evil.example.net@app.example.com/auth/callback",
        "//evil.example.net/auth/callback",
        "/auth/callback",
        "javascript:alert(1)",
        "https://admin.example.com/oauth/done",  # the allowed one has a query: exact match only
        "",
        "x" * 5000,
        # Look like the dashboard, but are not one of its pages on this service.
        "https://evil.example.net/dashboard/",
        "//evil.example.net/dashboard/",
        "/dashboard",
        "/dashboard/../v1/users/me",
        "/dashboard/\\evil.example.net",
        "/dashboard/#access_token=x",
        "/dashboard/ x",
        "http://testserver.evil.example/dashboard/",
        "/dashboard/" + "x" * 2000,
    ],
)
async def test_a_redirect_uri_off_the_allowlist_is_refused_without_redirecting(
    browser: Browser, provider: StandInProvider, app: Any, redirect_uri: str
) -> None:
    response = await browser.start("google", redirect_uri=redirect_uri)

    assert_invalid(response, {"redirect_uri": [REDIRECT_NOT_ALLOWED]})
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert await app.state.redis.keys(keys.oauth_state("*")) == []
    assert provider.requests == []


# --- signing in --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_new_user_gets_an_account_an_organization_and_tokens(
    browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    response = await browser.sign_in(name)

    assert response.headers["location"].startswith(f"{FRONTEND}#")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    tokens = fragment(response)
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", "900")
    body = await me(browser.app, tokens["access_token"])
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["full_name"] == "Ada Lovelace"
    assert body["user"]["email_verified"] is True
    assert body["organization"]["name"] == "Ada Lovelace's organization"
    assert body["role"] == "owner"
    assert [(i["provider"], i["email"]) for i in body["identities"]] == [(name, "ada@example.com")]
    # The refresh token is a normal one.
    refreshed = await browser.app.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    # The provider got the PKCE verifier and the exact redirect URI, and the state cookie is gone.
    (exchange,) = provider.calls("token")
    assert exchange.params["redirect_uri"] == f"{APP}/v1/auth/oauth/{name}/callback"
    assert len(exchange.params["code_verifier"]) >= 43
    assert 'backplane_oauth_state=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert await count(settings, "users") == 1
    assert await count(settings, "organizations") == 1


async def test_a_user_created_by_a_provider_has_no_password(browser: Browser, provider: StandInProvider) -> None:
    provider.account.name = None
    tokens = fragment(await browser.sign_in("github"))
    assert (await me(browser.app, tokens["access_token"]))["user"]["full_name"] == "ada"  # the GitHub login

    for path, body in (
        ("/v1/auth/login", {"email": "ada@example.com", "password": ""}),
        ("/v1/auth/login", {"email": "ada@example.com", "password": "SecurePass123!"}),
    ):
        response = await browser.app.post(path, json=body)
        assert_error(response, 401, "UNAUTHORIZED", BAD_CREDENTIALS)
    licensing = await browser.app.post("/api/v1/auth/token/", json={"email": "ada@example.com", "password": "x" * 12})
    assert licensing.status_code == 401
    assert licensing.json() == {"error": "Unauthorized", "detail": BAD_CREDENTIALS}


async def test_signing_in_again_finds_the_same_user_even_with_a_new_email(
    browser: Browser, provider: StandInProvider, settings: Settings
) -> None:
    first = await me(browser.app, fragment(await browser.sign_in("google"))["access_token"])
    provider.account.email = "ada.lovelace@example.org"

    second = await me(browser.app, fragment(await browser.sign_in("google"))["access_token"])

    assert second["user"]["id"] == first["user"]["id"]
    assert second["user"]["email"] == "ada@example.com"  # the account's own address is not changed
    assert [(i["id"], i["email"]) for i in second["identities"]] == [
        (first["identities"][0]["id"], "ada.lovelace@example.org")
    ]
    assert await count(settings, "users") == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_existing_user_with_the_verified_email_is_linked(
    api: Api, browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    account = await api.register("Ada@Example.com")
    await execute(settings, "UPDATE users SET email_verified_at = now()")
    provider.account.email = "ADA@example.com"

    tokens = fragment(await browser.sign_in(name))

    body = await me(browser.app, tokens["access_token"])
    assert body["user"]["id"] == account.user_id
    assert body["organization"]["id"] == account.organization_id
    assert [(i["provider"], i["email"]) for i in body["identities"]] == [(name, "ada@example.com")]
    # Their password and earlier tokens still work.
    login = await browser.app.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status_code == 200, login.text
    assert (await browser.app.get("/v1/users/me", headers=account.headers)).status_code == 200
    assert await count(settings, "users") == 1
    assert await count(settings, "organizations") == 1


async def test_linking_an_unverified_local_account_takes_it_from_whoever_set_its_password(
    api: Api, browser: Browser, provider: StandInProvider, settings: Settings
) -> None:
    """Someone registered with Ada's address before she did (they could never verify it). When Ada signs in
    with a provider that vouches for the address, the account is hers: their password, tokens and API keys stop
    working."""
    squatter = await api.register("ada@example.com")
    planted = await squatter.create_key(scopes=["read", "write", "admin"])

    tokens = fragment(await browser.sign_in("google"))

    body = await me(browser.app, tokens["access_token"])
    assert body["user"]["id"] == squatter.user_id
    assert body["user"]["email_verified"] is True
    login = await browser.app.post("/v1/auth/login", json={"email": squatter.email, "password": squatter.password})
    assert_error(login, 401, "UNAUTHORIZED", BAD_CREDENTIALS)
    assert (await browser.app.get("/v1/users/me", headers=squatter.headers)).status_code == 401
    refreshed = await browser.app.post("/v1/auth/refresh", json={"refresh_token": squatter.refresh})
    assert refreshed.status_code == 401
    with_key = await browser.app.get("/v1/users/me", headers={"Authorization": f"Bearer {planted['key']}"})
    assert_error(with_key, 401, "UNAUTHORIZED", "This API key has been revoked.")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_unverified_provider_email_is_refused(
    api: Api, browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    account = await api.register("ada@example.com")
    await execute(settings, "UPDATE users SET email_verified_at = now()")
    provider.account.email_verified = False
    provider.account.xms_edov = None  # Microsoft: a work account whose email domain nobody verified

    response = await browser.sign_in(name)

    assert_failed(
        response,
        "email_not_verified",
        f"Your {DISPLAY[name]} account's email address is not verified. Verify it with {DISPLAY[name]}, "
        "then sign in again.",
    )
    assert await count(settings, "oauth_identities") == 0
    assert await count(settings, "users") == 1  # nobody created; the existing user not linked
    login = await browser.app.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status_code == 200


@pytest.mark.parametrize(
    ("tid", "xms_edov", "signed_in"),
    [
        ("9188040d-6c67-4c5b-b112-36a304b66dad", None, True),  # a personal Microsoft account
        ("72f988bf-86f1-41af-91ab-2d7cd011db47", True, True),  # a work account, domain verified
        ("72f988bf-86f1-41af-91ab-2d7cd011db47", False, False),
        ("72f988bf-86f1-41af-91ab-2d7cd011db47", None, False),
    ],
)
async def test_which_microsoft_emails_count_as_verified(
    browser: Browser, provider: StandInProvider, tid: str, xms_edov: bool | None, signed_in: bool
) -> None:
    provider.account.email_verified = False
    provider.account.tid = tid
    provider.account.xms_edov = xms_edov

    response = await browser.sign_in("microsoft")

    if signed_in:
        assert "access_token" in fragment(response)
    else:
        assert landing(response)[1]["error"] == "email_not_verified"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_provider_account_without_an_email_is_refused(
    browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    provider.account.email = None

    response = await browser.sign_in(name)

    assert_failed(response, "email_not_verified", f"Your {DISPLAY[name]} account did not share an email address.")
    assert await count(settings, "users") == 0


async def test_a_deactivated_user_cannot_sign_in(browser: Browser, settings: Settings) -> None:
    tokens = fragment(await browser.sign_in("google"))
    assert (await browser.app.delete("/v1/users/me", headers=bearer(tokens["access_token"]))).status_code == 204

    response = await browser.sign_in("google")

    assert_failed(response, "account_disabled", "This account is deactivated.")


async def test_an_allowed_redirect_uri_receives_the_tokens(browser: Browser) -> None:
    response = await browser.sign_in("google", redirect_uri=OTHER_FRONTEND)

    assert response.headers["location"].startswith(f"{OTHER_FRONTEND}#access_token=")
    assert await me(browser.app, fragment(response)["access_token"])


async def test_a_redirect_uri_added_to_the_callback_is_ignored(browser: Browser) -> None:
    callback = await browser.authorize(await browser.start("google"))

    response = await browser.callback(f"{callback}&redirect_uri=https%3A%2F%2Fevil.example.net%2F")

    assert response.headers["location"].startswith(f"{FRONTEND}#access_token=")


async def test_cookie_delivery_sets_httponly_cookies_instead_of_a_fragment(
    browser: Browser, settings: Settings
) -> None:
    settings.oauth.oauth_token_delivery = "cookie"

    response = await browser.sign_in("google", redirect_uri=OTHER_FRONTEND)

    assert response.status_code == 302
    assert response.headers["location"] == OTHER_FRONTEND
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert set(cookies) == {"backplane_oauth_state", "backplane_access_token", "backplane_refresh_token"}
    for name, max_age in (("backplane_access_token", 900), ("backplane_refresh_token", 604800)):
        for attribute in ("HttpOnly", f"Max-Age={max_age}", "Path=/", "SameSite=lax"):
            assert attribute in cookies[name]
    access = browser.app.cookies["backplane_access_token"]
    assert (await me(browser.app, access))["identities"][0]["provider"] == "google"
    refresh = browser.app.cookies["backplane_refresh_token"]
    assert (await browser.app.post("/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 200


# --- state -------------------------------------------------------------------------------------


async def test_a_replayed_callback_is_refused(browser: Browser, provider: StandInProvider, settings: Settings) -> None:
    started = await browser.start("google")
    state_cookie = browser.app.cookies["backplane_oauth_state"]
    callback = await browser.authorize(started)
    assert "access_token" in fragment(await browser.callback(callback))

    # The same browser, whose state cookie is gone by now.
    again = await browser.callback(callback)
    assert_failed(again, "invalid_state", NOT_THIS_BROWSER)
    # Even with the cookie put back (an attacker holding both), the state works once only.
    browser.app.cookies.set("backplane_oauth_state", state_cookie, domain="testserver.local", path="/v1/auth/oauth")
    replayed = await browser.callback(callback)
    assert_failed(replayed, "invalid_state", ALREADY_USED)
    assert len(provider.calls("token")) == 1  # the code never went to the provider twice
    assert await count(settings, "users") == 1


async def test_a_callback_from_another_browser_is_refused(
    browser: Browser, other_browser: Browser, provider: StandInProvider, settings: Settings
) -> None:
    """Login CSRF: an attacker's own code and state, sent to the victim's browser, sign nobody in."""
    callback = await browser.authorize(await browser.start("google"))

    response = await other_browser.callback(callback)

    assert_failed(response, "invalid_state", NOT_THIS_BROWSER)
    assert provider.calls("token") == []
    assert await count(settings, "users") == 0
    # The browser that started it can still finish: the state was not used up by the forgery.
    assert "access_token" in fragment(await browser.callback(callback))


async def test_a_state_cookie_from_another_provider_is_refused(browser: Browser, provider: StandInProvider) -> None:
    callback = await browser.authorize(await browser.start("google"))

    response = await browser.callback(callback.replace("/oauth/google/", "/oauth/github/"))

    assert_failed(response, "invalid_state", NOT_THIS_BROWSER)
    assert provider.calls("token") == []


@pytest.mark.parametrize(
    "cookie",
    [
        "not-a-signed-value",
        "eyJzIjoieCIsInAiOiJnb29nbGUiLCJyIjoiaHR0cHM6Ly9ldmlsLmV4YW1wbGUubmV0LyJ9.ZZZZZZ.ZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ],
)
async def test_a_forged_state_cookie_is_refused(browser: Browser, other_browser: Browser, cookie: str) -> None:
    callback = await browser.authorize(await browser.start("google"))
    other_browser.app.cookies.set("backplane_oauth_state", cookie, domain="testserver.local", path="/v1/auth/oauth")

    response = await other_browser.callback(callback)

    assert_failed(response, "invalid_state", NOT_THIS_BROWSER)


async def test_a_cookie_signed_with_another_key_is_refused(
    browser: Browser, other_browser: Browser, settings: Settings
) -> None:
    from backplane.core.config import AuthSettings
    from backplane.oauth import state

    callback = await browser.authorize(await browser.start("google"))
    value = parse_qs(urlsplit(callback).query)["state"][0]
    other = settings.model_copy(update={"auth": AuthSettings(secret_key="another-secret-key-that-is-long-enough-0")})
    forged = state.sign_cookie(other, state.Started(value, "google", FRONTEND))
    other_browser.app.cookies.set("backplane_oauth_state", forged, domain="testserver.local", path="/v1/auth/oauth")

    response = await other_browser.callback(callback)

    assert_failed(response, "invalid_state", NOT_THIS_BROWSER)


@pytest.mark.parametrize(
    "query",
    ["", "?code=abc", "?code=abc&state=", "?state=forged&code=abc", "?error=access_denied", "?state=%00%ff&code=x"],
)
async def test_a_callback_without_a_matching_state_is_refused(
    browser: Browser, provider: StandInProvider, query: str
) -> None:
    await browser.start("google")

    response = await browser.callback(f"/v1/auth/oauth/google/callback{query}")

    state = parse_qs(urlsplit(query).query).get("state", [""])[0]
    if state:
        assert_failed(response, "invalid_state", NOT_THIS_BROWSER)
    else:
        assert_failed(response, "invalid_state", "The sign-in response carries no state. Sign in again.")
    assert provider.calls("token") == []


async def test_a_failed_sign_in_returns_to_the_frontend_it_started_from(
    browser: Browser, provider: StandInProvider
) -> None:
    provider.deny = "access_denied"

    response = await browser.sign_in("google", redirect_uri=OTHER_FRONTEND)

    assert_failed(response, "access_denied", "You did not allow signing in with Google.", frontend=OTHER_FRONTEND)


# --- provider failures -------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
async def test_denied_consent_ends_on_the_frontend_with_access_denied(
    browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    provider.deny = "access_denied"
    started = await browser.start(name)
    state_cookie = browser.app.cookies["backplane_oauth_state"]
    callback = await browser.authorize(started)

    response = await browser.callback(callback)

    assert_failed(response, "access_denied", f"You did not allow signing in with {DISPLAY[name]}.")
    assert provider.calls("token") == []
    assert await count(settings, "users") == 0
    # The state is used up: the same state cannot be reused with a code.
    browser.app.cookies.set("backplane_oauth_state", state_cookie, domain="testserver.local", path="/v1/auth/oauth")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    retry = await browser.callback(f"/v1/auth/oauth/{name}/callback?state={state}&code=abc")
    assert_failed(retry, "invalid_state", ALREADY_USED)


@pytest.mark.parametrize(
    ("error", "expected"),
    [("temporarily_unavailable", "temporarily_unavailable"), ("weird<script>", "provider_error")],
)
async def test_other_provider_errors_are_passed_on_or_named_provider_error(
    browser: Browser, provider: StandInProvider, error: str, expected: str
) -> None:
    provider.deny = error

    response = await browser.sign_in("github")

    assert_failed(response, expected, "GitHub could not sign you in. Try again.")


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_reused_code_is_refused_by_the_provider(
    browser: Browser, provider: StandInProvider, settings: Settings, name: str
) -> None:
    first = await browser.authorize(await browser.start(name))
    assert "access_token" in fragment(await browser.callback(first))
    used_code = parse_qs(urlsplit(first).query)["code"][0]
    # A fresh state from this browser, paired with the code that was already exchanged.
    fresh = parse_qs(urlsplit((await browser.start(name)).headers["location"]).query)["state"][0]

    response = await browser.callback(f"/v1/auth/oauth/{name}/callback?code={used_code}&state={fresh}")

    assert_failed(
        response,
        "invalid_grant",
        f"{DISPLAY[name]} refused the sign-in code: it expired or was already used. Sign in again.",
    )
    assert len(provider.calls("token")) == 2
    assert await count(settings, "oauth_identities") == 1


async def test_the_callback_without_a_code_is_refused(browser: Browser, provider: StandInProvider) -> None:
    callback = await browser.authorize(await browser.start("google"))
    state = parse_qs(urlsplit(callback).query)["state"][0]

    response = await browser.callback(f"/v1/auth/oauth/google/callback?state={state}")

    assert_failed(response, "invalid_request", "Google sent no authorization code. Sign in again.")


@pytest.mark.parametrize("status", [500, 503])
async def test_a_token_endpoint_outage_ends_on_the_frontend(
    browser: Browser, provider: StandInProvider, status: int
) -> None:
    provider.fail_token = status

    response = await browser.sign_in("microsoft")

    assert_failed(response, "provider_error", "Microsoft could not be reached to finish signing in. Try again.")


async def test_an_unreachable_provider_ends_on_the_frontend(browser: Browser, settings: Settings) -> None:
    callback = await browser.authorize(await browser.start("google"))
    settings.oauth.google_oauth_base_url = "http://127.0.0.1:9"  # discard port: nothing listens

    response = await browser.callback(callback)

    assert_failed(response, "provider_error", "Google could not be reached to finish signing in. Try again.")


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("failure", ["status", "not_json_object", "no_subject"])
async def test_a_failed_profile_request_ends_on_the_frontend(
    browser: Browser, provider: StandInProvider, settings: Settings, name: str, failure: str
) -> None:
    if failure == "status":
        provider.fail_userinfo = 502
    else:
        provider.userinfo_body = ["not", "an", "object"] if failure == "not_json_object" else {"email": "a@b.c"}

    response = await browser.sign_in(name)

    assert_failed(response, "provider_error", f"{DISPLAY[name]} did not return your profile. Try again.")
    assert await count(settings, "users") == 0
