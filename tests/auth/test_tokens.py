"""Which credentials a protected route accepts, and how each rejection is rendered on both surfaces.

The platform route is `GET /v1/users/me`; the licensing one is a probe route under `/api/v1/`
guarded by the same authentication dependency (see `licensing_probe` in conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.auth.helpers import (
    ACCESS_EXPIRED,
    ACCESS_INVALID,
    BAD_CREDENTIALS,
    NO_CREDENTIALS,
    REFRESH_INVALID,
    assert_licensing_error,
    assert_platform_error,
    bearer,
    claims_for,
    forge,
    unsigned_token,
)

KEY_REVOKED = "This API key has been revoked."
KEY_EXPIRED = "This API key has expired."
KEY_INVALID = "Invalid API key."


@dataclass
class Surface:
    name: str
    path: str
    client: httpx.AsyncClient

    async def get(self, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(self.path, headers=headers or {})

    def assert_unauthorized(self, response: httpx.Response, message: str) -> None:
        if self.name == "licensing":
            assert_licensing_error(response, 401, "Unauthorized", message)
        else:
            assert_platform_error(response, 401, "UNAUTHORIZED", message)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture(params=["platform", "licensing"])
def surface(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> Surface:
    if request.param == "platform":
        return Surface("platform", "/v1/users/me", client)
    return Surface("licensing", request.getfixturevalue("licensing_probe"), client)


Rejects = Callable[[dict[str, str], str], Awaitable[None]]


@pytest.fixture
def rejects(surface: Surface) -> Rejects:
    async def _rejects(headers: dict[str, str], message: str) -> None:
        surface.assert_unauthorized(await surface.get(headers), message)

    return _rejects


# --- controls: what is accepted ----------------------------------------------------------------


async def test_a_valid_access_token_is_accepted(api, surface):
    account = await api.register()

    response = await surface.get(account.headers)

    assert response.status_code == 200, response.text


async def test_a_token_forged_with_the_real_secret_and_all_claims_is_accepted(api, surface, settings):
    # Proves the forging helper makes tokens the service accepts, so each rejection below is caused
    # by the one thing that test changes.
    account = await api.register()
    token = forge(claims_for(account.user_id), settings.secret_key)

    response = await surface.get(bearer(token))

    assert response.status_code == 200, response.text


async def test_the_scheme_name_is_case_insensitive(api, surface):
    account = await api.register()

    response = await surface.get({"Authorization": f"bearer {account.access}"})

    assert response.status_code == 200, response.text


async def test_an_api_key_is_accepted(api, surface):
    account = await api.register()
    key = await account.create_key()

    response = await surface.get(bearer(key["key"]))

    assert response.status_code == 200, response.text


# --- missing or unusable Authorization header --------------------------------------------------


async def test_no_authorization_header_is_a_401_with_a_bearer_challenge(surface):
    response = await surface.get()

    surface.assert_unauthorized(response, NO_CREDENTIALS)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("value", ["Basic xyz", "Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer ", "abc"])
async def test_an_authorization_header_without_a_bearer_token_is_a_401(rejects, value):
    await rejects({"Authorization": value}, NO_CREDENTIALS)


async def test_basic_auth_with_valid_credentials_is_still_a_401(api, surface):
    account = await api.register()

    response = await surface.client.get(surface.path, auth=(account.email, account.password))

    surface.assert_unauthorized(response, NO_CREDENTIALS)


# --- forged, expired and misused JWTs ----------------------------------------------------------


async def test_an_expired_access_token_is_a_401(api, rejects, settings):
    account = await api.register()
    token = forge(
        claims_for(account.user_id, iat=int(datetime.now(UTC).timestamp()) - 1000, ttl=-100), settings.secret_key
    )

    await rejects(bearer(token), ACCESS_EXPIRED)


async def test_a_refresh_token_is_not_an_access_token(api, rejects):
    account = await api.register()

    await rejects(bearer(account.refresh), ACCESS_INVALID)


async def test_a_token_signed_with_another_secret_is_a_401(api, rejects, settings):
    account = await api.register()
    token = forge(claims_for(account.user_id), "not-the-server-secret-" + settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


async def test_an_alg_none_token_is_a_401(api, rejects):
    account = await api.register()
    token = unsigned_token(claims_for(account.user_id))
    assert token.endswith(".")

    await rejects(bearer(token), ACCESS_INVALID)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_a_token_with_another_algorithm_is_a_401_even_with_the_right_secret(api, rejects, settings, algorithm):
    account = await api.register()
    token = forge(claims_for(account.user_id), settings.secret_key, algorithm=algorithm)

    await rejects(bearer(token), ACCESS_INVALID)


@pytest.mark.parametrize("claim", ["jti", "sub", "iat", "exp", "type", "iss", "aud"])
async def test_a_token_missing_a_required_claim_is_a_401(api, rejects, settings, claim):
    account = await api.register()
    token = forge(claims_for(account.user_id, **{claim: None}), settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://another-service.example.com"},
        {"iss": "http://testserver/"},
        {"aud": "another-service"},
        {"aud": ["another-service"]},
        {"aud": 42},
    ],
)
async def test_a_token_for_another_issuer_or_audience_is_a_401(api, rejects, settings, claims):
    # Signed with the right secret (another deployment sharing it, or a token minted for another
    # service), but not issued by this service for this service.
    account = await api.register()
    token = forge(claims_for(account.user_id, **claims), settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


async def test_a_token_naming_this_service_among_several_audiences_is_accepted(api, surface, settings):
    account = await api.register()
    token = forge(claims_for(account.user_id, aud=["another-service", "backplane"]), settings.secret_key)

    response = await surface.get(bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("token_type", ["refresh", "api_key", "", "ACCESS"])
async def test_a_token_of_another_type_is_a_401(api, rejects, settings, token_type):
    account = await api.register()
    token = forge(claims_for(account.user_id, type=token_type), settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


async def test_a_tampered_payload_is_a_401(api, rejects):
    victim = await api.register("victim@example.com")
    attacker = await api.register("attacker@example.com")
    header, _, signature = attacker.access.split(".")
    victim_payload = victim.access.split(".")[1]

    await rejects(bearer(f"{header}.{victim_payload}.{signature}"), ACCESS_INVALID)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9.e30.", "x" * 5000])
async def test_a_garbage_token_is_a_401(rejects, token):
    await rejects(bearer(token), ACCESS_INVALID)


async def test_a_token_for_an_unknown_user_is_a_401(rejects, settings):
    token = forge(claims_for(str(uuid.uuid4())), settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


async def test_a_token_whose_subject_is_not_a_user_id_is_a_401(rejects, settings):
    token = forge(claims_for("admin"), settings.secret_key)

    await rejects(bearer(token), ACCESS_INVALID)


async def test_tokens_of_a_deleted_user_are_refused(api, client, rejects, execute):
    account = await api.register()
    assert await execute("DELETE FROM users WHERE id = :id", id=account.user_id) == 1

    await rejects(account.headers, ACCESS_INVALID)
    refresh = await client.post("/api/v1/auth/token/refresh/", json={"refresh": account.refresh})
    assert_licensing_error(refresh, 401, "Unauthorized", REFRESH_INVALID)


async def test_a_deactivated_user_is_locked_out(api, client, rejects, execute):
    account = await api.register()
    assert await execute("UPDATE users SET is_active = false WHERE id = :id", id=account.user_id) == 1

    await rejects(account.headers, ACCESS_INVALID)
    refresh = await client.post("/api/v1/auth/token/refresh/", json={"refresh": account.refresh})
    assert_licensing_error(refresh, 401, "Unauthorized", REFRESH_INVALID)
    login = await client.post("/api/v1/auth/token/", json={"email": account.email, "password": account.password})
    assert_licensing_error(login, 401, "Unauthorized", BAD_CREDENTIALS)
    platform_login = await client.post("/v1/auth/login", json={"email": account.email, "password": account.password})
    assert_platform_error(platform_login, 401, "UNAUTHORIZED", BAD_CREDENTIALS)


# --- API keys ----------------------------------------------------------------------------------


async def test_a_revoked_api_key_is_a_401(api, client, surface, rejects):
    account = await api.register()
    key = await account.create_key()
    assert (await surface.get(bearer(key["key"]))).status_code == 200

    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None

    await rejects(bearer(key["key"]), KEY_REVOKED)


async def test_an_expired_api_key_is_a_401(api, surface, rejects, execute):
    account = await api.register()
    key = await account.create_key(expires_at=(datetime.now(UTC) + timedelta(days=30)).isoformat())
    assert (await surface.get(bearer(key["key"]))).status_code == 200

    changed = await execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id", id=key["id"])
    assert changed == 1

    await rejects(bearer(key["key"]), KEY_EXPIRED)


async def test_an_api_key_not_yet_expired_is_accepted(api, surface):
    account = await api.register()
    key = await account.create_key(expires_at=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())

    response = await surface.get(bearer(key["key"]))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("prefix", ["coexai_live_", "coexai_test_"])
async def test_an_unknown_api_key_is_a_401(rejects, prefix):
    await rejects(bearer(prefix + "A" * 40), KEY_INVALID)


async def test_a_tampered_api_key_is_a_401(api, rejects):
    account = await api.register()
    key = await account.create_key()
    last = key["key"][-1]
    tampered = key["key"][:-1] + ("B" if last != "B" else "C")

    await rejects(bearer(tampered), KEY_INVALID)


async def test_an_api_key_of_a_deleted_organization_is_a_401(api, rejects, execute):
    account = await api.register()
    key = await account.create_key()
    assert await execute("DELETE FROM organizations WHERE id = :id", id=account.organization_id) == 1

    await rejects(bearer(key["key"]), KEY_INVALID)
