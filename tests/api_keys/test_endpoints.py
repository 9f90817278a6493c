"""`/v1/api-keys`: create, list, get, revoke; validation, roles and tenancy."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.assertions import (
    assert_error,
    assert_invalid,
    assert_not_found,
    assert_role_forbidden,
    assert_scope_forbidden,
)

KEY_NOT_FOUND = "No API key with this id."
ORG_NOT_FOUND = "Organization not found."
READ_FIELDS = {
    "id",
    "name",
    "prefix",
    "mode",
    "scopes",
    "allowed_ips",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "revoked_reason",
    "created_at",
    "created_by_id",
}
SECRET = re.compile(r"^coexai_(live|test)_([A-Za-z0-9]+)$")


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def in_future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def list_ids(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await client.get("/v1/api-keys", params={"limit": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [k["id"] for k in response.json()["data"]]


# ---------------------------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------------------------


async def test_create_returns_the_full_key_once_with_defaults(api, client):
    account = await api.register()
    response = await client.post("/v1/api-keys", json={"name": "CI pipeline"}, headers=account.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == READ_FIELDS | {"key"}
    key = created["key"]
    match = SECRET.match(key)
    assert match, key
    assert match.group(1) == "live"
    assert len(match.group(2)) >= 32
    assert key.startswith("coexai_live_")
    assert created["prefix"] == key[:20]
    assert uuid.UUID(created["id"])
    assert created["name"] == "CI pipeline"
    assert created["mode"] == "live"
    assert created["scopes"] == ["read", "write"]
    assert created["allowed_ips"] == []
    assert created["expires_at"] is None
    assert created["last_used_at"] is None
    assert created["revoked_at"] is None
    assert created["created_by_id"] == account.user_id
    assert datetime.fromisoformat(created["created_at"]).tzinfo is not None


async def test_create_a_test_mode_key(api, client):
    account = await api.register()
    response = await client.post(
        "/v1/api-keys", json={"name": "sandbox", "mode": "test", "scopes": ["read"]}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    created = response.json()
    match = SECRET.match(created["key"])
    assert match, created["key"]
    assert match.group(1) == "test"
    assert len(match.group(2)) >= 32
    assert created["prefix"] == created["key"][:20]
    assert created["prefix"].startswith("coexai_test_")
    assert created["mode"] == "test"
    assert created["scopes"] == ["read"]

    me = await client.get("/v1/users/me", headers=bearer(created))
    assert me.status_code == 200, me.text
    assert me.json()["auth"]["livemode"] is False


async def test_every_key_is_random(api, client):
    account = await api.register()
    keys = [await account.create_key(name=f"k{i}") for i in range(5)]
    secrets = {k["key"] for k in keys}
    prefixes = {k["prefix"] for k in keys}
    assert len(secrets) == 5
    assert len(prefixes) == 5
    for k in keys:
        random_part = k["key"].removeprefix("coexai_live_")
        assert len(set(random_part)) > 10  # not a constant or trivially patterned string


async def test_create_normalizes_scopes_and_allowed_ips(api, client):
    account = await api.register()
    created = await account.create_key(
        scopes=["admin", "read", "read"],
        allowed_ips=["10.1.2.3/8", " 192.168.0.1 ", "2001:db8::1", "2001:db8::/32"],
    )
    assert created["scopes"] == ["read", "admin"]
    assert created["allowed_ips"] == ["10.0.0.0/8", "192.168.0.1/32", "2001:db8::1/128", "2001:db8::/32"]
    fetched = await client.get(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert fetched.json()["scopes"] == ["read", "admin"]
    assert fetched.json()["allowed_ips"] == created["allowed_ips"]


async def test_create_with_a_future_expiry(api, client):
    account = await api.register()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    created = await account.create_key(expires_at=expires.isoformat())
    assert datetime.fromisoformat(created["expires_at"]) == expires
    me = await client.get("/v1/users/me", headers=bearer(created))
    assert me.status_code == 200, me.text


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"name": "x", "allowed_ips": ["not-a-cidr"]},
            {"allowed_ips": ["'not-a-cidr' is not an IP address or CIDR block."]},
        ),
        (
            {"name": "x", "allowed_ips": ["10.0.0.0/33"]},
            {"allowed_ips": ["'10.0.0.0/33' is not an IP address or CIDR block."]},
        ),
        (
            {"name": "x", "allowed_ips": ["300.1.1.1"]},
            {"allowed_ips": ["'300.1.1.1' is not an IP address or CIDR block."]},
        ),
        ({"name": "x", "allowed_ips": "10.0.0.0/8"}, {"allowed_ips": ["Input should be a valid list"]}),
        (
            {"name": "x", "allowed_ips": ["10.0.0.1"] * 51},
            {"allowed_ips": ["List should have at most 50 items after validation, not 51"]},
        ),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, {"expires_at": ["Must be in the future."]}),
        ({"name": "x", "expires_at": "2099-01-01T00:00:00"}, {"expires_at": ["Input should have timezone info"]}),
        (
            {"name": "x", "expires_at": "next tuesday"},
            {"expires_at": ["Input should be a valid datetime or date, invalid character in year"]},
        ),
        ({"name": "x", "scopes": ["superuser"]}, {"scopes.0": ["Input should be 'read', 'write' or 'admin'"]}),
        ({"name": "x", "scopes": ["read", "owner"]}, {"scopes.1": ["Input should be 'read', 'write' or 'admin'"]}),
        ({"name": "x", "scopes": []}, {"scopes": ["List should have at least 1 item after validation, not 0"]}),
        ({"name": "x", "scopes": "admin"}, {"scopes": ["Input should be a valid list"]}),
        ({"name": "x", "mode": "prod"}, {"mode": ["Input should be 'live' or 'test'"]}),
        ({"name": "x", "superuser": True}, {"superuser": ["Extra inputs are not permitted"]}),
        ({"name": "x", "key": "coexai_live_" + "a" * 40}, {"key": ["Extra inputs are not permitted"]}),
        ({}, {"name": ["This field is required."]}),
        ({"name": ""}, {"name": ["String should have at least 1 character"]}),
        ({"name": "   "}, {"name": ["String should have at least 1 character"]}),
    ],
)
async def test_create_rejects_bad_bodies(api, client, body, fields):
    account = await api.register()
    response = await client.post("/v1/api-keys", json=body, headers=account.headers)
    assert_invalid(response, fields)
    assert await list_ids(client, account.headers, include_revoked=True) == []


async def test_expires_at_now_is_in_the_past_by_the_time_it_arrives(api, client):
    account = await api.register()
    response = await client.post(
        "/v1/api-keys", json={"name": "x", "expires_at": datetime.now(UTC).isoformat()}, headers=account.headers
    )
    assert_invalid(response, {"expires_at": ["Must be in the future."]})


async def test_create_accepts_a_name_of_100_characters(api, client):
    account = await api.register()
    created = await account.create_key(name="n" * 100)
    assert created["name"] == "n" * 100


@pytest.mark.parametrize("length", [101, 150, 200])
async def test_create_rejects_a_name_longer_than_100_characters(api, raw_client, length):
    """The name column holds 100 characters: a longer name is a field error, never a 500."""
    account = await api.register()
    response = await raw_client.post("/v1/api-keys", json={"name": "n" * length}, headers=account.headers)
    assert_invalid(response, {"name": ["String should have at most 100 characters"]})


async def test_create_rejects_a_name_with_a_nul_character(api, raw_client):
    account = await api.register()
    response = await raw_client.post("/v1/api-keys", json={"name": "bad\u0000key"}, headers=account.headers)
    assert_invalid(response, {"name": ["Must not contain NUL (\\u0000) characters."]})


async def test_create_rejects_a_body_that_is_not_json(api, client):
    account = await api.register()
    response = await client.post(
        "/v1/api-keys", content=b"name=x", headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"].startswith("The request body is not valid JSON: ")
    assert error["request_id"] == response.headers["X-Request-ID"]


# ---------------------------------------------------------------------------------------------
# List and get
# ---------------------------------------------------------------------------------------------


async def test_list_and_get_never_show_the_secret(api, client):
    account = await api.register()
    created = await account.create_key(name="secretive", scopes=["read"])

    listed = await client.get("/v1/api-keys", headers=account.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["has_more"] is False
    assert page["next_cursor"] is None
    [item] = page["data"]
    assert set(item) == READ_FIELDS
    assert created["key"] not in listed.text
    expected = {k: v for k, v in created.items() if k != "key"}
    assert item == expected

    fetched = await client.get(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == expected
    assert created["key"] not in fetched.text


async def test_list_pages_through_every_key_exactly_once(api, client):
    account = await api.register()
    created = [(await account.create_key(name=f"key {i}"))["id"] for i in range(5)]

    ids: list[str] = []
    cursor = None
    shapes = []
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/api-keys", params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        shapes.append((len(page["data"]), page["has_more"]))
        ids.extend(k["id"] for k in page["data"])
        cursor = page["next_cursor"]
        assert (cursor is not None) is page["has_more"]
        if not page["has_more"]:
            break
        assert len(shapes) < 10
    assert shapes == [(2, True), (2, True), (1, False)]
    assert len(ids) == len(set(ids)) == 5
    assert ids == list(reversed(created))  # newest first


async def test_list_rejects_bad_parameters(api, client):
    account = await api.register()
    response = await client.get("/v1/api-keys", params={"cursor": "tampered"}, headers=account.headers)
    assert_invalid(response, {"cursor": ["Invalid cursor."]})
    response = await client.get("/v1/api-keys", params={"limit": 500}, headers=account.headers)
    assert_invalid(response, {"limit": ["Input should be less than or equal to 100"]})
    response = await client.get("/v1/api-keys", params={"include_revoked": "maybe"}, headers=account.headers)
    assert_invalid(response, {"include_revoked": ["Input should be a valid boolean, unable to interpret input"]})


async def test_list_excludes_revoked_keys_unless_asked(api, client):
    account = await api.register()
    kept = await account.create_key(name="kept")
    revoked = await account.create_key(name="revoked")
    response = await client.delete(f"/v1/api-keys/{revoked['id']}", headers=account.headers)
    assert response.status_code == 200, response.text

    assert await list_ids(client, account.headers) == [kept["id"]]
    assert await list_ids(client, account.headers, include_revoked="false") == [kept["id"]]
    everything = await client.get("/v1/api-keys", params={"include_revoked": "true"}, headers=account.headers)
    assert [(k["id"], k["revoked_at"] is not None) for k in everything.json()["data"]] == [
        (revoked["id"], True),
        (kept["id"], False),
    ]


async def test_get_and_revoke_a_foreign_or_unknown_key_is_404(api, client):
    alice = await api.register()
    bob = await api.register()
    bobs = await bob.create_key(name="bob's")
    for key_id in (bobs["id"], str(uuid.uuid4())):
        assert_not_found(await client.get(f"/v1/api-keys/{key_id}", headers=alice.headers), KEY_NOT_FOUND)
        assert_not_found(await client.delete(f"/v1/api-keys/{key_id}", headers=alice.headers), KEY_NOT_FOUND)
    assert bobs["id"] not in await list_ids(client, alice.headers, include_revoked=True)
    # bob's key survived the attempt
    me = await client.get("/v1/users/me", headers=bearer(bobs))
    assert me.status_code == 200, me.text
    fetched = await client.get(f"/v1/api-keys/{bobs['id']}", headers=bob.headers)
    assert fetched.json()["revoked_at"] is None


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "42", "coexai_live_abc"])
async def test_get_and_revoke_a_malformed_id_is_404(api, client, bad_id):
    account = await api.register()
    assert_not_found(await client.get(f"/v1/api-keys/{bad_id}", headers=account.headers))
    assert_not_found(await client.delete(f"/v1/api-keys/{bad_id}", headers=account.headers))


async def test_keys_belong_to_the_organization_chosen_by_x_organization_id(api, client):
    alice = await api.register()
    bob = await api.register()
    await api.add_member(bob, alice, "admin")

    response = await client.post(
        "/v1/api-keys", json={"name": "for bob's org"}, headers=alice.in_org(bob.organization_id)
    )
    assert response.status_code == 201, response.text
    in_b = response.json()
    in_a = await alice.create_key(name="for alice's org")

    assert await list_ids(client, alice.headers) == [in_a["id"]]
    assert await list_ids(client, alice.in_org(bob.organization_id)) == [in_b["id"]]
    assert await list_ids(client, bob.headers) == [in_b["id"]]
    assert_not_found(await client.get(f"/v1/api-keys/{in_b['id']}", headers=alice.headers), KEY_NOT_FOUND)

    me = await client.get("/v1/users/me", headers=bearer(in_b))
    assert me.json()["organization"]["id"] == bob.organization_id
    assert me.json()["user"]["id"] == alice.user_id


async def test_x_organization_id_of_a_foreign_organization_is_404(api, client):
    alice = await api.register()
    bob = await api.register()
    response = await client.get("/v1/api-keys", headers=alice.in_org(bob.organization_id))
    assert_not_found(response, ORG_NOT_FOUND)
    response = await client.post("/v1/api-keys", json={"name": "x"}, headers=alice.in_org(bob.organization_id))
    assert_not_found(response, ORG_NOT_FOUND)
    assert await list_ids(client, bob.headers) == []


# ---------------------------------------------------------------------------------------------
# Revoke
# ---------------------------------------------------------------------------------------------


async def test_revoke_takes_effect_at_once_and_is_idempotent(api, client):
    account = await api.register()
    created = await account.create_key()
    assert (await client.get("/v1/users/me", headers=bearer(created))).status_code == 200

    response = await client.delete(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert set(revoked) == READ_FIELDS
    assert revoked["id"] == created["id"]
    revoked_at = datetime.fromisoformat(revoked["revoked_at"])
    assert abs(datetime.now(UTC) - revoked_at) < timedelta(minutes=1)

    denied = await client.get("/v1/users/me", headers=bearer(created))
    assert_error(denied, 401, "UNAUTHORIZED", "This API key has been revoked.")
    assert denied.headers["WWW-Authenticate"] == "Bearer"

    again = await client.delete(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert again.status_code == 200, again.text
    assert again.json()["revoked_at"] == revoked["revoked_at"]
    fetched = await client.get(f"/v1/api-keys/{created['id']}", headers=account.headers)
    assert fetched.json()["revoked_at"] == revoked["revoked_at"]


async def test_a_key_can_revoke_itself(api, client):
    account = await api.register()
    created = await account.create_key(scopes=["read", "write", "admin"])
    response = await client.delete(f"/v1/api-keys/{created['id']}", headers=bearer(created))
    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    denied = await client.get("/v1/api-keys", headers=bearer(created))
    assert_error(denied, 401, "UNAUTHORIZED", "This API key has been revoked.")


# ---------------------------------------------------------------------------------------------
# Who may manage keys
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_users_below_admin_cannot_manage_keys(api, client, role):
    owner = await api.register()
    actor = await api.register()
    await api.add_member(owner, actor, role)
    existing = await owner.create_key()
    headers = actor.in_org(owner.organization_id)

    calls = [
        ("POST", "/v1/api-keys", {"name": "mine"}),
        ("GET", "/v1/api-keys", None),
        ("GET", f"/v1/api-keys/{existing['id']}", None),
        ("DELETE", f"/v1/api-keys/{existing['id']}", None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=headers)
        assert_role_forbidden(response, role)
        assert response.json()["error"]["message"] == (
            f"Your role '{role}' does not allow this action; it requires 'admin'."
        )
    assert await list_ids(client, owner.headers) == [existing["id"]]


async def test_an_admin_user_manages_keys(api, client):
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    headers = admin.in_org(owner.organization_id)
    response = await client.post("/v1/api-keys", json={"name": "admin's"}, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["created_by_id"] == admin.user_id
    owners = await owner.create_key(name="owner's")
    # an admin sees and revokes every key of the organization
    assert await list_ids(client, headers) == [owners["id"], created["id"]]
    revoked = await client.delete(f"/v1/api-keys/{owners['id']}", headers=headers)
    assert revoked.status_code == 200, revoked.text


@pytest.mark.parametrize("scopes", [["read"], ["read", "write"], ["write"]])
async def test_a_key_without_admin_scope_cannot_manage_keys(api, client, scopes):
    account = await api.register()
    key = await account.create_key(scopes=scopes)
    calls = [
        ("POST", "/v1/api-keys", {"name": "escalation", "scopes": ["admin"]}),
        ("GET", "/v1/api-keys", None),
        ("GET", f"/v1/api-keys/{key['id']}", None),
        ("DELETE", f"/v1/api-keys/{key['id']}", None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=bearer(key))
        assert_scope_forbidden(response, "admin")
        assert response.json()["error"]["message"] == "This API key lacks the 'admin' scope."
    assert await list_ids(client, account.headers) == [key["id"]]


async def test_an_admin_scope_key_creates_keys(api, client):
    account = await api.register()
    admin_key = await account.create_key(scopes=["read", "write", "admin"])
    response = await client.post(
        "/v1/api-keys", json={"name": "made by a key", "scopes": ["read"]}, headers=bearer(admin_key)
    )
    assert response.status_code == 201, response.text
    child = response.json()
    assert child["key"].startswith("coexai_live_")
    assert child["scopes"] == ["read"]
    assert child["created_by_id"] == account.user_id  # the user behind the key
    listed = await client.get("/v1/api-keys", headers=bearer(admin_key))
    assert listed.status_code == 200, listed.text
    assert {k["id"] for k in listed.json()["data"]} == {admin_key["id"], child["id"]}
    me = await client.get("/v1/users/me", headers=bearer(child))
    assert me.status_code == 200, me.text
    assert me.json()["auth"]["scopes"] == ["read"]


async def test_a_test_mode_key_creates_only_test_mode_keys(api, client):
    account = await api.register()
    test_key = await account.create_key(mode="test", scopes=["read", "write", "admin"])

    live = await client.post("/v1/api-keys", json={"name": "live from test"}, headers=bearer(test_key))
    assert_invalid(
        live,
        {"mode": ["In test mode (a test-mode key, or X-Backplane-Mode: test) only test-mode keys can be created."]},
    )
    explicit = await client.post(
        "/v1/api-keys", json={"name": "live from test", "mode": "live"}, headers=bearer(test_key)
    )
    assert_invalid(
        explicit,
        {"mode": ["In test mode (a test-mode key, or X-Backplane-Mode: test) only test-mode keys can be created."]},
    )

    ok = await client.post("/v1/api-keys", json={"name": "test from test", "mode": "test"}, headers=bearer(test_key))
    assert ok.status_code == 201, ok.text
    assert ok.json()["mode"] == "test"
    assert ok.json()["key"].startswith("coexai_test_")
    modes = sorted(k["mode"] for k in (await client.get("/v1/api-keys", headers=account.headers)).json()["data"])
    assert modes == ["test", "test"]


async def test_a_live_admin_key_creates_test_mode_keys(api, client):
    account = await api.register()
    live_key = await account.create_key(scopes=["admin"])
    response = await client.post("/v1/api-keys", json={"name": "t", "mode": "test"}, headers=bearer(live_key))
    assert response.status_code == 201, response.text
    assert response.json()["mode"] == "test"


async def test_key_management_needs_authentication(client):
    response = await client.get("/v1/api-keys")
    assert_error(
        response,
        401,
        "UNAUTHORIZED",
        "Authentication credentials were not provided. Send `Authorization: Bearer <token>`.",
    )
    response = await client.post("/v1/api-keys", json={"name": "anon"})
    assert response.status_code == 401, response.text
