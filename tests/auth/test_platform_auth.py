"""Platform surface `/v1/...`: login, refresh, logout, `users/me` and choosing an organization."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from jose import jwt

from tests.auth.helpers import (
    ACCESS_INVALID,
    ACCESS_REVOKED,
    BAD_CREDENTIALS,
    FIELD_REQUIRED,
    INVALID_EMAIL,
    REFRESH_INVALID,
    REFRESH_REVOKED,
    assert_platform_error,
    assert_platform_fields,
    bearer,
)
from tests.fixtures.auth import PASSWORD

LOGIN = "/v1/auth/login"
REFRESH = "/v1/auth/refresh"
LOGOUT = "/v1/auth/logout"
ME = "/v1/users/me"
ORGANIZATIONS = "/v1/organizations"
ORG_NOT_FOUND = "Organization not found."
JWT_ONLY = "This action needs a signed-in user (a JWT), not an API key."


async def registered_user(client, email: str = "dev@example.com") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/auth/register/",
        json={"email": email, "password": PASSWORD, "full_name": "Developer", "company_name": "Acme Inc"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client, email: str = "dev@example.com", password: str = PASSWORD) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(LOGIN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()["tokens"]
    return tokens


# --- /v1/auth/login ----------------------------------------------------------------------------


async def test_login_returns_the_user_and_a_bearer_token_pair(client, settings):
    registered = await registered_user(client)

    response = await client.post(LOGIN, json={"email": "dev@example.com", "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    tokens = body["tokens"]
    assert body == {
        "user": registered["user"],
        "tokens": {
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "token_type": "Bearer",
            "expires_in": 900,
        },
    }
    issued = {"algorithms": ["HS256"], "issuer": "http://testserver", "audience": "backplane"}
    access = jwt.decode(tokens["access_token"], settings.secret_key, **issued)
    refresh = jwt.decode(tokens["refresh_token"], settings.secret_key, **issued)
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert access["sub"] == refresh["sub"] == registered["user"]["id"]
    me = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"] == registered["user"]


async def test_login_ignores_the_email_capitalisation(client):
    await registered_user(client)

    tokens = await login(client, "Dev@EXAMPLE.com")

    assert tokens["token_type"] == "Bearer"


async def test_login_with_a_wrong_password_or_unknown_email_is_the_same_401(client):
    await registered_user(client)

    wrong_password = await client.post(LOGIN, json={"email": "dev@example.com", "password": "WrongPass123!"})
    unknown_email = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})

    assert_platform_error(wrong_password, 401, "UNAUTHORIZED", BAD_CREDENTIALS)
    assert_platform_error(unknown_email, 401, "UNAUTHORIZED", BAD_CREDENTIALS)
    assert wrong_password.headers["X-Request-ID"] != unknown_email.headers["X-Request-ID"]


async def test_login_with_malformed_json_is_a_validation_error(client):
    response = await client.post(
        LOGIN, content=b'{"email": "dev@example.com",', headers={"Content-Type": "application/json"}
    )

    assert_platform_error(
        response,
        422,
        "VALIDATION_ERROR",
        "The request body is not valid JSON: Expecting property name enclosed in double quotes.",
    )


async def test_login_reports_missing_fields(client):
    response = await client.post(LOGIN, json={})

    assert_platform_fields(response, {"email": [FIELD_REQUIRED], "password": [FIELD_REQUIRED]})


async def test_login_rejects_an_invalid_email(client):
    response = await client.post(LOGIN, json={"email": "not-an-email", "password": PASSWORD})

    assert_platform_fields(response, {"email": [INVALID_EMAIL]})


async def test_login_with_a_json_array_is_a_validation_error(client):
    response = await client.post(LOGIN, json=[{"email": "dev@example.com", "password": PASSWORD}])

    assert_platform_fields(
        response, {"non_field_errors": ["Input should be a valid dictionary or object to extract fields from"]}
    )


# --- /v1/auth/refresh and /v1/auth/logout ------------------------------------------------------


async def test_refresh_returns_a_new_access_token_and_the_same_refresh_token(client):
    registered = await registered_user(client)
    tokens = await login(client)

    for _ in range(3):  # not rotated: the same refresh token keeps working
        response = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 200, response.text
        new = response.json()["tokens"]
        assert response.json() == {
            "tokens": {
                "access_token": new["access_token"],
                "refresh_token": tokens["refresh_token"],
                "token_type": "Bearer",
                "expires_in": 900,
            }
        }
        assert new["access_token"] != tokens["access_token"]
        me = await client.get(ME, headers=bearer(new["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["user"]["id"] == registered["user"]["id"]


async def test_a_licensing_refresh_token_works_on_the_platform_surface(api, client):
    account = await api.register()

    response = await client.post(REFRESH, json={"refresh_token": account.refresh})

    assert response.status_code == 200, response.text
    assert response.json()["tokens"]["refresh_token"] == account.refresh


async def test_refresh_with_an_access_token_is_a_401(client):
    await registered_user(client)
    tokens = await login(client)

    response = await client.post(REFRESH, json={"refresh_token": tokens["access_token"]})

    assert_platform_error(response, 401, "UNAUTHORIZED", REFRESH_INVALID)


async def test_refresh_with_garbage_is_a_401(client):
    response = await client.post(REFRESH, json={"refresh_token": "garbage"})

    assert_platform_error(response, 401, "UNAUTHORIZED", REFRESH_INVALID)


async def test_refresh_without_a_token_is_a_validation_error(client):
    response = await client.post(REFRESH, json={"refresh": "the licensing field name"})

    assert_platform_fields(response, {"refresh_token": [FIELD_REQUIRED]})


async def test_logout_revokes_the_refresh_token(client):
    await registered_user(client)
    tokens = await login(client)
    other = await login(client)

    response = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Logged out. The refresh token is revoked."}
    revoked = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert_platform_error(revoked, 401, "UNAUTHORIZED", REFRESH_REVOKED)
    again = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert_platform_error(again, 401, "UNAUTHORIZED", REFRESH_REVOKED)
    still_valid = await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert still_valid.status_code == 200, still_valid.text


async def test_logout_revokes_the_access_tokens_of_that_sign_in(client):
    await registered_user(client)
    tokens = await login(client)
    other = await login(client)
    refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text

    response = await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens["access_token"])
    )

    assert response.status_code == 200, response.text
    for access in (tokens["access_token"], refreshed.json()["tokens"]["access_token"]):
        me = await client.get(ME, headers=bearer(access))
        assert_platform_error(me, 401, "UNAUTHORIZED", ACCESS_REVOKED)
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_with_another_users_access_token_is_a_401(client):
    await registered_user(client)
    await registered_user(client, "stranger@example.com")
    tokens = await login(client)
    stranger = await login(client, "stranger@example.com")

    response = await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=bearer(stranger["access_token"])
    )

    assert_platform_error(response, 401, "UNAUTHORIZED", ACCESS_INVALID)
    assert (await client.get(ME, headers=bearer(stranger["access_token"]))).status_code == 200
    assert (await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})).status_code == 200


# --- /v1/users/me ------------------------------------------------------------------------------


async def test_me_with_a_jwt(client):
    registered = await registered_user(client)
    tokens = await login(client)

    response = await client.get(ME, headers=bearer(tokens["access_token"]))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user": registered["user"],
        "organization": registered["organization"],
        "role": "owner",
        "auth": {
            "type": "jwt",
            "scopes": ["admin", "owner", "read", "write"],
            "livemode": True,
            "api_key_id": None,
        },
        "identities": [],
    }


@pytest.mark.parametrize(
    ("scopes", "mode", "role", "effective", "livemode"),
    [
        (["read"], "live", "viewer", ["read"], True),
        (["read", "write"], "live", "member", ["read", "write"], True),
        # an owner's key with `admin` acts as the owner (owner-only actions included)
        (["read", "write", "admin"], "live", "owner", ["admin", "owner", "read", "write"], True),
        (["read", "write"], "test", "member", ["read", "write"], False),
    ],
)
async def test_me_with_an_api_key(api, client, scopes, mode, role, effective, livemode):
    account = await api.register("dev@example.com")
    key = await account.create_key(scopes=scopes, mode=mode)
    assert key["key"].startswith(f"coexai_{mode}_")
    jwt_me = (await client.get(ME, headers=account.headers)).json()

    response = await client.get(ME, headers=bearer(key["key"]))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user": jwt_me["user"],  # the user who created the key
        "organization": jwt_me["organization"],
        "role": role,
        "auth": {"type": "api_key", "scopes": effective, "livemode": livemode, "api_key_id": key["id"]},
        "identities": [],
    }


async def test_patch_me_changes_the_full_name(api, client):
    account = await api.register()

    response = await client.patch(ME, json={"full_name": "  Grace Hopper  "}, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["full_name"] == "Grace Hopper"
    assert response.json()["auth"]["type"] == "jwt"
    me = await client.get(ME, headers=account.headers)
    assert me.json()["user"]["full_name"] == "Grace Hopper"
    login_response = await client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert login_response.json()["user"]["full_name"] == "Grace Hopper"


async def test_patch_me_with_an_api_key_is_forbidden(api, client):
    account = await api.register()
    key = await account.create_key(scopes=["read", "write", "admin"])

    response = await client.patch(ME, json={"full_name": "Changed By Key"}, headers=bearer(key["key"]))

    assert_platform_error(response, 403, "FORBIDDEN", JWT_ONLY)
    me = await client.get(ME, headers=account.headers)
    assert me.json()["user"]["full_name"] == "Test User"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"full_name": [FIELD_REQUIRED]}),
        ({"full_name": "   "}, {"full_name": ["String should have at least 1 character"]}),
        ({"full_name": "x" * 10_000}, {"full_name": ["String should have at most 200 characters"]}),
        ({"full_name": 42}, {"full_name": ["Input should be a valid string"]}),
    ],
)
async def test_patch_me_validates_the_full_name(api, client, body, fields):
    account = await api.register()

    response = await client.patch(ME, json=body, headers=account.headers)

    assert_platform_fields(response, fields)


async def test_patch_me_with_a_nul_character_is_a_422_not_a_500(api, raw_client):
    account = await api.register()

    response = await raw_client.patch(ME, json={"full_name": "Grace\u0000Hopper"}, headers=account.headers)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert list(error["details"]["fields"]) == ["full_name"]


async def test_me_without_credentials_is_a_401(client):
    response = await client.get(ME)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


# --- X-Organization-ID -------------------------------------------------------------------------


async def _create_organization(client, account, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(ORGANIZATIONS, json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_x_organization_id_selects_another_of_the_callers_organizations(api, client):
    account = await api.register(company="First Co")
    second = await _create_organization(client, account, "Second Co")

    chosen = await client.get(ME, headers=account.in_org(second["id"]))
    default = await client.get(ME, headers=account.headers)
    first = await client.get(ME, headers=account.in_org(account.organization_id))

    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["organization"] == {"id": second["id"], "name": "Second Co", "slug": "second-co"}
    assert chosen.json()["role"] == "owner"
    # Without the header: the oldest membership.
    assert default.json()["organization"]["id"] == account.organization_id
    assert default.json()["organization"]["name"] == "First Co"
    assert first.json()["organization"] == default.json()["organization"]


async def test_x_organization_id_gives_the_role_in_that_organization(api, client):
    owner = await api.register("owner@example.com", company="Owner Co")
    viewer = await api.register("viewer@example.com", company="Viewer Co")
    await api.add_member(owner, viewer, "viewer")

    response = await client.get(ME, headers=viewer.in_org(owner.organization_id))

    assert response.status_code == 200, response.text
    assert response.json()["organization"]["id"] == owner.organization_id
    assert response.json()["role"] == "viewer"
    assert response.json()["auth"]["scopes"] == ["read"]


async def test_x_organization_id_of_a_foreign_organization_is_a_404(api, client):
    account = await api.register("dev@example.com")
    stranger = await api.register("stranger@example.com", company="Stranger Co")

    response = await client.get(ME, headers=account.in_org(stranger.organization_id))

    assert_platform_error(response, 404, "NOT_FOUND", ORG_NOT_FOUND)


async def test_x_organization_id_of_no_organization_is_a_404(api, client):
    account = await api.register()

    response = await client.get(ME, headers=account.in_org(str(uuid.uuid4())))

    assert_platform_error(response, 404, "NOT_FOUND", ORG_NOT_FOUND)


@pytest.mark.parametrize("value", ["not-a-uuid", "123", "00000000-0000-0000-0000", "'; DROP TABLE users; --"])
async def test_a_malformed_x_organization_id_is_a_404(api, client, value):
    account = await api.register()

    response = await client.get(ME, headers=account.in_org(value))

    assert_platform_error(response, 404, "NOT_FOUND", ORG_NOT_FOUND)
