"""Authenticating with an API key: identity, last_used_at, IP allowlist, expiry, revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.assertions import assert_error

IP_FORBIDDEN = "This API key may not be used from this IP address."


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def test_a_key_authenticates_users_me_as_its_creator_in_its_organization(api, client):
    account = await api.register(company="Key Corp")
    key = await account.create_key(scopes=["read", "write"])
    response = await client.get("/v1/users/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["user"]["id"] == account.user_id
    assert me["user"]["email"] == account.email
    assert me["organization"]["id"] == account.organization_id
    assert me["role"] == "member"
    assert me["auth"] == {
        "type": "api_key",
        "scopes": ["read", "write"],
        "livemode": True,
        "api_key_id": key["id"],
    }


async def test_a_key_ignores_x_organization_id(api, client):
    alice = await api.register()
    bob = await api.register()
    await api.add_member(bob, alice, "owner")
    key = await alice.create_key(scopes=["read"])
    headers = {**bearer(key), "X-Organization-ID": bob.organization_id}
    me = await client.get("/v1/users/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["organization"]["id"] == alice.organization_id


async def test_using_a_key_records_last_used_at(api, client):
    account = await api.register()
    key = await account.create_key(scopes=["read"])
    before = await client.get(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert before.json()["last_used_at"] is None

    started = datetime.now(UTC)
    response = await client.get("/v1/users/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    finished = datetime.now(UTC)

    after = await client.get(f"/v1/api-keys/{key['id']}", headers=account.headers)
    last_used = after.json()["last_used_at"]
    assert last_used is not None
    stamp = datetime.fromisoformat(last_used)
    assert started - timedelta(seconds=1) <= stamp <= finished + timedelta(seconds=1)
    # the other keys are untouched
    other = await account.create_key(name="unused")
    assert (await client.get(f"/v1/api-keys/{other['id']}", headers=account.headers)).json()["last_used_at"] is None


async def test_a_jwt_call_does_not_touch_last_used_at(api, client):
    account = await api.register()
    key = await account.create_key()
    await client.get("/v1/users/me", headers=account.headers)
    fetched = await client.get(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert fetched.json()["last_used_at"] is None


async def test_an_unknown_key_is_401(client):
    for token in ("coexai_live_" + "a" * 40, "coexai_test_" + "b" * 40, "coexai_live_"):
        response = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "UNAUTHORIZED", "Invalid API key.")
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_tampered_key_is_401(api, client):
    account = await api.register()
    key = await account.create_key()
    secret = key["key"]
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    response = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {tampered}"})
    assert_error(response, 401, "UNAUTHORIZED", "Invalid API key.")
    test_prefixed = secret.replace("coexai_live_", "coexai_test_", 1)
    response = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {test_prefixed}"})
    assert_error(response, 401, "UNAUTHORIZED", "Invalid API key.")


async def test_a_revoked_key_is_401_everywhere(api, client):
    account = await api.register()
    key = await account.create_key(scopes=["read", "write", "admin"])
    revoke = await client.delete(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert revoke.status_code == 200, revoke.text
    assert revoke.json()["revoked_at"] is not None
    for method, url in (
        ("GET", "/v1/users/me"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/organizations"),
        ("GET", f"/v1/organizations/{account.organization_id}"),
    ):
        response = await client.request(method, url, headers=bearer(key))
        assert_error(response, 401, "UNAUTHORIZED", "This API key has been revoked.")


async def test_an_expired_key_is_401(api, client):
    account = await api.register()
    expires = datetime.now(UTC) + timedelta(seconds=3)  # room for a loaded machine to create and use it
    key = await account.create_key(expires_at=expires.isoformat())
    assert (await client.get("/v1/users/me", headers=bearer(key))).status_code == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    response = await client.get("/v1/users/me", headers=bearer(key))
    assert_error(response, 401, "UNAUTHORIZED", "This API key has expired.")


# ---------------------------------------------------------------------------------------------
# IP allowlist (the in-process client calls from 127.0.0.1)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "allowed",
    [["10.0.0.0/8"], ["192.168.1.10"], ["::1"], ["128.0.0.0/1"], ["2001:db8::/32", "172.16.0.0/12"]],
)
async def test_a_key_used_outside_its_allowlist_is_403(api, client, allowed):
    account = await api.register()
    key = await account.create_key(allowed_ips=allowed)
    response = await client.get("/v1/users/me", headers=bearer(key))
    assert_error(response, 403, "FORBIDDEN", IP_FORBIDDEN, {"ip": "127.0.0.1"})
    # a refused call does not count as a use
    fetched = await client.get(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert fetched.json()["last_used_at"] is None


@pytest.mark.parametrize(
    "allowed",
    [["127.0.0.0/8"], ["127.0.0.1"], ["127.0.0.1/32"], ["0.0.0.0/0"], ["10.0.0.0/8", "127.0.0.0/24"]],
)
async def test_a_key_used_inside_its_allowlist_works(api, client, allowed):
    account = await api.register()
    key = await account.create_key(allowed_ips=allowed)
    response = await client.get("/v1/users/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.json()["auth"]["api_key_id"] == key["id"]
    fetched = await client.get(f"/v1/api-keys/{key['id']}", headers=account.headers)
    assert fetched.json()["last_used_at"] is not None


async def test_the_allowlist_applies_to_key_management_too(api, client):
    account = await api.register()
    key = await account.create_key(scopes=["read", "write", "admin"], allowed_ips=["10.0.0.0/8"])
    response = await client.post("/v1/api-keys", json={"name": "sneaky"}, headers=bearer(key))
    assert_error(response, 403, "FORBIDDEN", IP_FORBIDDEN, {"ip": "127.0.0.1"})
    response = await client.delete(f"/v1/api-keys/{key['id']}", headers=bearer(key))
    assert_error(response, 403, "FORBIDDEN", IP_FORBIDDEN, {"ip": "127.0.0.1"})
    listed = await client.get("/v1/api-keys", headers=account.headers)
    assert [k["id"] for k in listed.json()["data"]] == [key["id"]]
    assert listed.json()["data"][0]["revoked_at"] is None
