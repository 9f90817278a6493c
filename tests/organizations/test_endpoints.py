"""`/v1/organizations`: list, create, get, rename; tenancy and API-key callers."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime
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

ORG_NOT_FOUND = "Organization not found."
NUL_MESSAGE = "Must not contain NUL (\\u0000) characters."
NEEDS_USER = "This action needs a signed-in user (a JWT), not an API key."


async def create_org(client: httpx.AsyncClient, account: Any, name: str) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Every page of a cursor-paginated list; checks the page envelope on the way."""
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "has_more", "next_cursor"}
        assert len(page["data"]) <= limit
        pages.append(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        assert len(page["data"]) == limit
        assert isinstance(page["next_cursor"], str)
        cursor = page["next_cursor"]
        assert len(pages) < 50, "pagination does not terminate"


# ---------------------------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------------------------


async def test_create_returns_201_with_the_caller_as_owner(api, client):
    account = await api.register()
    response = await client.post("/v1/organizations", json={"name": "  Beta Labs  "}, headers=account.headers)
    assert response.status_code == 201, response.text
    org = response.json()
    assert set(org) == {"id", "name", "slug", "role", "created_at"}
    assert uuid.UUID(org["id"])
    assert org["id"] != account.organization_id
    assert org["name"] == "Beta Labs"
    assert org["slug"] == "beta-labs"
    assert org["role"] == "owner"
    assert datetime.fromisoformat(org["created_at"]).tzinfo is not None

    fetched = await client.get(f"/v1/organizations/{org['id']}", headers=account.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == org

    me = await client.get("/v1/users/me", headers=account.in_org(org["id"]))
    assert me.status_code == 200, me.text
    assert me.json()["organization"]["id"] == org["id"]
    assert me.json()["role"] == "owner"

    members = await client.get(f"/v1/organizations/{org['id']}/members", headers=account.headers)
    assert members.status_code == 200, members.text
    assert [(m["user_id"], m["role"]) for m in members.json()["data"]] == [(account.user_id, "owner")]


async def test_create_with_a_taken_name_gets_a_distinct_slug(api, client):
    account = await api.register()
    first = await create_org(client, account, "Gamma Co")
    second = await create_org(client, account, "Gamma Co")
    assert first["slug"] == "gamma-co"
    assert second["slug"] != first["slug"]
    assert second["slug"].startswith("gamma-co-")
    assert second["name"] == "Gamma Co"


async def test_concurrent_creates_with_the_same_name_all_succeed_with_unique_slugs(api, client):
    account = await api.register()
    responses = await asyncio.gather(
        *(client.post("/v1/organizations", json={"name": "Race Org"}, headers=account.headers) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    slugs = {r.json()["slug"] for r in responses}
    assert len(slugs) == 5


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": ""}, {"name": ["String should have at least 1 character"]}),
        ({"name": "   "}, {"name": ["String should have at least 1 character"]}),
        ({"name": "x" * 201}, {"name": ["String should have at most 200 characters"]}),
        ({}, {"name": ["This field is required."]}),
        ({"name": 42}, {"name": ["Input should be a valid string"]}),
        ({"name": None}, {"name": ["Input should be a valid string"]}),
        ({"name": "Ok", "plan": "pro"}, {"plan": ["Extra inputs are not permitted"]}),
    ],
)
async def test_create_rejects_bad_names(api, client, body, fields):
    account = await api.register()
    response = await client.post("/v1/organizations", json=body, headers=account.headers)
    assert_invalid(response, fields)
    listed = await client.get("/v1/organizations", headers=account.headers)
    assert len(listed.json()["data"]) == 1  # nothing was created


async def test_create_accepts_a_name_of_exactly_200_characters(api, client):
    account = await api.register()
    org = await create_org(client, account, "n" * 200)
    assert org["name"] == "n" * 200
    assert len(org["slug"]) <= 80


async def test_create_rejects_a_body_that_is_not_json(api, client):
    account = await api.register()
    response = await client.post(
        "/v1/organizations",
        content=b'{"name": ',
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"].startswith("The request body is not valid JSON: ")
    assert error["details"] == {}
    assert error["request_id"] == response.headers["X-Request-ID"]


async def test_create_rejects_a_name_with_a_nul_character_without_a_500(api, raw_client):
    """PostgreSQL cannot store U+0000 in text; bad input must be a 422, never a 500."""
    account = await api.register()
    response = await raw_client.post("/v1/organizations", json={"name": "Acme\u0000Corp"}, headers=account.headers)
    assert_invalid(response, {"name": [NUL_MESSAGE]})


async def test_create_with_an_api_key_is_forbidden(api, client):
    account = await api.register()
    key = await account.create_key(scopes=["read", "write", "admin"])
    response = await client.post(
        "/v1/organizations", json={"name": "Via key"}, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert_error(response, 403, "FORBIDDEN", NEEDS_USER)
    listed = await client.get("/v1/organizations", headers=account.headers)
    assert [o["id"] for o in listed.json()["data"]] == [account.organization_id]


async def test_create_needs_authentication(client):
    response = await client.post("/v1/organizations", json={"name": "Anon"})
    assert_error(
        response,
        401,
        "UNAUTHORIZED",
        "Authentication credentials were not provided. Send `Authorization: Bearer <token>`.",
    )
    assert response.headers["WWW-Authenticate"] == "Bearer"


# ---------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------


async def test_list_shows_only_the_callers_organizations_with_their_roles(api, client):
    alice = await api.register()
    bob = await api.register()
    carol = await api.register()
    extra = await create_org(client, alice, "Alice Two")
    await create_org(client, carol, "Carol Private")
    await api.add_member(bob, alice, "viewer")

    response = await client.get("/v1/organizations", headers=alice.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["has_more"] is False
    assert page["next_cursor"] is None
    roles = {o["id"]: o["role"] for o in page["data"]}
    assert roles == {alice.organization_id: "owner", extra["id"]: "owner", bob.organization_id: "viewer"}
    # newest first
    stamps = [o["created_at"] for o in page["data"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_list_pages_through_every_organization_exactly_once(api, client):
    account = await api.register()
    created = [account.organization_id]
    for i in range(4):
        created.append((await create_org(client, account, f"Paged {i}"))["id"])

    pages = await all_pages(client, "/v1/organizations", account.headers, limit=2)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["has_more"] for p in pages] == [True, True, False]
    ids = [o["id"] for p in pages for o in p["data"]]
    assert len(ids) == len(set(ids)) == 5
    assert ids == list(reversed(created))  # newest first, in creation order


async def test_list_with_limit_equal_to_the_total_has_no_next_page(api, client):
    account = await api.register()
    await create_org(client, account, "Second")
    response = await client.get("/v1/organizations", params={"limit": 2}, headers=account.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["data"]) == 2
    assert page["has_more"] is False
    assert page["next_cursor"] is None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "%%%",
        _b64("no separator here"),
        _b64("2024-01-01T00:00:00+00:00|not-a-uuid"),
        _b64(f"yesterday|{uuid.UUID(int=1)}"),
        "é",
    ],
)
async def test_list_rejects_a_tampered_cursor(api, client, cursor):
    account = await api.register()
    response = await client.get("/v1/organizations", params={"cursor": cursor}, headers=account.headers)
    assert_invalid(response, {"cursor": ["Invalid cursor."]})


async def test_list_rejects_a_modified_real_cursor(api, client):
    account = await api.register()
    for i in range(2):
        await create_org(client, account, f"Cursor {i}")
    first = await client.get("/v1/organizations", params={"limit": 1}, headers=account.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    tampered = "!" + cursor[1:]
    response = await client.get("/v1/organizations", params={"cursor": tampered}, headers=account.headers)
    assert_invalid(response, {"cursor": ["Invalid cursor."]})


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
async def test_list_rejects_a_cursor_with_an_unrepresentable_timestamp(api, raw_client, stamp):
    """A well-formed cursor whose timestamp PostgreSQL cannot hold is still a tampered cursor: 422."""
    account = await api.register()
    response = await raw_client.get(
        "/v1/organizations", params={"cursor": _b64(f"{stamp}|{uuid.uuid4()}")}, headers=account.headers
    )
    assert_invalid(response, {"cursor": ["Invalid cursor."]})


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"limit": 0}, {"limit": ["Input should be greater than or equal to 1"]}),
        ({"limit": 101}, {"limit": ["Input should be less than or equal to 100"]}),
        ({"limit": "ten"}, {"limit": ["Input should be a valid integer, unable to parse string as an integer"]}),
        ({"cursor": "c" * 201}, {"cursor": ["String should have at most 200 characters"]}),
    ],
)
async def test_list_rejects_bad_page_parameters(api, client, params, fields):
    account = await api.register()
    response = await client.get("/v1/organizations", params=params, headers=account.headers)
    assert_invalid(response, fields)


async def test_list_needs_a_valid_token(client):
    response = await client.get("/v1/organizations", headers={"Authorization": "Bearer not-a-jwt"})
    assert_error(response, 401, "UNAUTHORIZED", "Access token is invalid.")


# ---------------------------------------------------------------------------------------------
# Get
# ---------------------------------------------------------------------------------------------


async def test_get_shows_the_callers_role_in_that_organization(api, client):
    owner = await api.register(company="Shared Org")
    viewer = await api.register()
    await api.add_member(owner, viewer, "viewer")
    response = await client.get(f"/v1/organizations/{owner.organization_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    org = response.json()
    assert org["id"] == owner.organization_id
    assert org["name"] == "Shared Org"
    assert org["slug"].startswith("shared-org")
    assert org["role"] == "viewer"


async def test_get_a_foreign_organization_is_404(api, client):
    alice = await api.register()
    bob = await api.register()
    response = await client.get(f"/v1/organizations/{bob.organization_id}", headers=alice.headers)
    assert_not_found(response, ORG_NOT_FOUND)


async def test_get_an_unknown_organization_is_404(api, client):
    account = await api.register()
    response = await client.get(f"/v1/organizations/{uuid.uuid4()}", headers=account.headers)
    assert_not_found(response, ORG_NOT_FOUND)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_get_a_malformed_id_is_404(api, client, bad_id):
    account = await api.register()
    response = await client.get(f"/v1/organizations/{bad_id}", headers=account.headers)
    assert_not_found(response)


async def test_x_organization_id_of_a_foreign_organization_is_404(api, client):
    alice = await api.register()
    bob = await api.register()
    response = await client.get("/v1/users/me", headers=alice.in_org(bob.organization_id))
    assert_not_found(response, ORG_NOT_FOUND)
    response = await client.get("/v1/users/me", headers=alice.in_org("not-a-uuid"))
    assert_not_found(response, ORG_NOT_FOUND)


# ---------------------------------------------------------------------------------------------
# Rename
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
async def test_rename_by_owner_or_admin(api, client, role):
    owner = await api.register(company="Old Name")
    actor = owner
    if role != "owner":
        actor = await api.register()
        await api.add_member(owner, actor, role)
    before = (await client.get(f"/v1/organizations/{owner.organization_id}", headers=owner.headers)).json()

    response = await client.patch(
        f"/v1/organizations/{owner.organization_id}", json={"name": "  New Name  "}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    renamed = response.json()
    assert renamed["name"] == "New Name"
    assert renamed["slug"] == before["slug"]  # the slug is stable
    assert renamed["role"] == role
    assert renamed["created_at"] == before["created_at"]

    again = await client.get(f"/v1/organizations/{owner.organization_id}", headers=owner.headers)
    assert again.json()["name"] == "New Name"


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_rename_below_admin_is_forbidden(api, client, role):
    owner = await api.register(company="Keep Me")
    actor = await api.register()
    await api.add_member(owner, actor, role)
    response = await client.patch(
        f"/v1/organizations/{owner.organization_id}", json={"name": "Hijacked"}, headers=actor.headers
    )
    assert_role_forbidden(response, role)
    assert response.json()["error"]["message"] == f"Your role '{role}' does not allow this action; it requires 'admin'."
    again = await client.get(f"/v1/organizations/{owner.organization_id}", headers=owner.headers)
    assert again.json()["name"] == "Keep Me"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": ""}, {"name": ["String should have at least 1 character"]}),
        ({"name": "x" * 201}, {"name": ["String should have at most 200 characters"]}),
        ({}, {"name": ["This field is required."]}),
        ({"name": "Fine", "slug": "mine"}, {"slug": ["Extra inputs are not permitted"]}),
    ],
)
async def test_rename_rejects_bad_names(api, client, body, fields):
    account = await api.register(company="Stable")
    response = await client.patch(f"/v1/organizations/{account.organization_id}", json=body, headers=account.headers)
    assert_invalid(response, fields)
    again = await client.get(f"/v1/organizations/{account.organization_id}", headers=account.headers)
    assert again.json()["name"] == "Stable"


async def test_rename_a_foreign_organization_is_404_and_changes_nothing(api, client):
    alice = await api.register()
    bob = await api.register(company="Bob Corp")
    response = await client.patch(
        f"/v1/organizations/{bob.organization_id}", json={"name": "Pwned"}, headers=alice.headers
    )
    assert_not_found(response, ORG_NOT_FOUND)
    again = await client.get(f"/v1/organizations/{bob.organization_id}", headers=bob.headers)
    assert again.json()["name"] == "Bob Corp"


async def test_rename_a_foreign_organization_with_a_bad_body_is_still_404(api, client):
    alice = await api.register()
    bob = await api.register()
    response = await client.patch(f"/v1/organizations/{bob.organization_id}", json={"name": ""}, headers=alice.headers)
    assert_not_found(response, ORG_NOT_FOUND)


async def test_rename_a_malformed_id_is_404(api, client):
    account = await api.register()
    response = await client.patch("/v1/organizations/not-a-uuid", json={"name": "Valid"}, headers=account.headers)
    assert_not_found(response)


async def test_rename_a_malformed_id_with_a_bad_body_is_404_like_an_unknown_id(api, client):
    """A malformed id names nothing, exactly like an unknown one: 404, whatever the body."""
    account = await api.register()
    unknown = await client.patch(f"/v1/organizations/{uuid.uuid4()}", json={"name": ""}, headers=account.headers)
    assert_not_found(unknown, ORG_NOT_FOUND)
    malformed = await client.patch("/v1/organizations/not-a-uuid", json={"name": ""}, headers=account.headers)
    assert_not_found(malformed)


async def test_rename_with_a_nul_character_is_422_not_500(api, raw_client):
    account = await api.register()
    response = await raw_client.patch(
        f"/v1/organizations/{account.organization_id}", json={"name": "Bad\u0000Name"}, headers=account.headers
    )
    assert_invalid(response, {"name": [NUL_MESSAGE]})


# ---------------------------------------------------------------------------------------------
# API-key callers
# ---------------------------------------------------------------------------------------------


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


@pytest.mark.parametrize(
    ("scopes", "role"),
    # an owner's key with the `admin` scope acts as the owner (owner-only actions included)
    [(["read"], "viewer"), (["read", "write"], "member"), (["read", "write", "admin"], "owner")],
)
async def test_an_api_key_lists_only_its_own_organization(api, client, scopes, role):
    alice = await api.register(company="Alice A")
    second = await create_org(client, alice, "Alice B")
    bob = await api.register()
    await api.add_member(bob, alice, "admin")
    key = await alice.create_key(scopes=scopes)

    response = await client.get("/v1/organizations", headers=bearer(key))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["has_more"] is False
    assert page["next_cursor"] is None
    assert [(o["id"], o["role"]) for o in page["data"]] == [(alice.organization_id, role)]
    assert second["id"] not in {o["id"] for o in page["data"]}


async def test_an_api_key_gets_its_organization_but_404_for_any_other(api, client):
    alice = await api.register()
    other = await create_org(client, alice, "Alice Other")  # the key's creator belongs to it
    bob = await api.register()
    key = await alice.create_key(scopes=["read"])

    own = await client.get(f"/v1/organizations/{alice.organization_id}", headers=bearer(key))
    assert own.status_code == 200, own.text
    assert own.json()["id"] == alice.organization_id
    assert own.json()["role"] == "viewer"

    for org_id in (other["id"], bob.organization_id, str(uuid.uuid4())):
        response = await client.get(f"/v1/organizations/{org_id}", headers=bearer(key))
        assert_not_found(response, ORG_NOT_FOUND)
        members = await client.get(f"/v1/organizations/{org_id}/members", headers=bearer(key))
        assert_not_found(members, ORG_NOT_FOUND)


async def test_an_api_key_without_admin_scope_cannot_rename(api, client):
    account = await api.register(company="Key Org")
    key = await account.create_key(scopes=["read", "write"])
    response = await client.patch(
        f"/v1/organizations/{account.organization_id}", json={"name": "Renamed"}, headers=bearer(key)
    )
    assert_scope_forbidden(response, "admin")


async def test_an_admin_api_key_can_rename_its_organization(api, client):
    account = await api.register(company="Key Org")
    key = await account.create_key(scopes=["admin"])
    response = await client.patch(
        f"/v1/organizations/{account.organization_id}", json={"name": "Renamed By Key"}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed By Key"
    assert response.json()["role"] == "owner"  # the key of an owner, with `admin`


async def test_an_api_key_listing_organizations_still_rejects_a_tampered_cursor(api, client):
    """The key branch returns its single organization, but a tampered cursor is a 422 for every caller."""
    account = await api.register()
    key = await account.create_key(scopes=["read"])
    response = await client.get("/v1/organizations", params={"cursor": "not-a-cursor!"}, headers=bearer(key))
    assert_invalid(response, {"cursor": ["Invalid cursor."]})
    response = await client.get("/v1/organizations", params={"limit": 0}, headers=bearer(key))
    assert_invalid(response, {"limit": ["Input should be greater than or equal to 1"]})
