"""`/v1/organizations/{id}/members`: list, add, change role, remove; owners and tenancy."""

from __future__ import annotations

import asyncio
import uuid
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
from tests.fixtures.mail import token_from_mail

ORG_NOT_FOUND = "Organization not found."
NO_MEMBER = "No member with this id in the organization."
ONLY_OWNER = "Only an owner can grant, change or remove the owner role."
LAST_OWNER = "An organization must keep at least one owner; make someone else owner first."
ALREADY_MEMBER = "Someone with this email address is already a member of the organization."
ROLE_CHOICES = "Input should be 'owner', 'admin', 'member' or 'viewer'"


def members_url(org_id: str, user_id: str | None = None) -> str:
    url = f"/v1/organizations/{org_id}/members"
    return f"{url}/{user_id}" if user_id else url


async def member_roles(client: httpx.AsyncClient, account: Any, org_id: str) -> dict[str, str]:
    response = await client.get(members_url(org_id), params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["data"]}


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


# ---------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------


async def test_list_members_shows_everyone_with_their_role(api, client):
    owner = await api.register("owner@example.com")
    admin = await api.register("admin@example.com")
    viewer = await api.register("viewer@example.com")
    outsider = await api.register("outsider@example.com")
    await api.add_member(owner, admin, "admin")
    await api.add_member(owner, viewer, "viewer")

    response = await client.get(members_url(owner.organization_id), headers=viewer.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["has_more"] is False
    assert page["next_cursor"] is None
    for member in page["data"]:
        assert set(member) == {"organization_id", "user_id", "email", "full_name", "role", "joined_at"}
        assert member["full_name"] == "Test User"
    # newest first
    assert [(m["email"], m["role"]) for m in page["data"]] == [
        ("viewer@example.com", "viewer"),
        ("admin@example.com", "admin"),
        ("owner@example.com", "owner"),
    ]
    assert outsider.user_id not in {m["user_id"] for m in page["data"]}


async def test_list_members_pages_through_everyone_exactly_once(api, client):
    owner = await api.register()
    expected = {owner.user_id}
    for _ in range(4):
        member = await api.register()
        await api.add_member(owner, member, "member")
        expected.add(member.user_id)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(members_url(owner.organization_id), params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        seen.extend(m["user_id"] for m in page["data"])
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if not page["has_more"]:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == expected


async def test_list_members_rejects_a_tampered_cursor(api, client):
    owner = await api.register()
    response = await client.get(members_url(owner.organization_id), params={"cursor": "bogus"}, headers=owner.headers)
    assert_invalid(response, {"cursor": ["Invalid cursor."]})


# ---------------------------------------------------------------------------------------------
# Add
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"role": "member"}, {"email": ["This field is required."]}),
        ({"email": "x@example.com", "role": "superuser"}, {"role": [ROLE_CHOICES]}),
        ({"email": "x@example.com", "invite": True}, {"invite": ["Extra inputs are not permitted"]}),
    ],
)
async def test_add_rejects_bad_bodies(api, client, body, fields):
    owner = await api.register()
    await api.register("x@example.com")
    response = await client.post(members_url(owner.organization_id), json=body, headers=owner.headers)
    assert_invalid(response, fields)
    assert len(await member_roles(client, owner, owner.organization_id)) == 1


async def test_inviting_an_existing_member_again_is_409(api, client):
    owner = await api.register()
    member = await api.register()
    await api.add_member(owner, member, "member")
    response = await client.post(
        members_url(owner.organization_id), json={"email": member.email, "role": "admin"}, headers=owner.headers
    )
    assert_error(response, 409, "CONFLICT", ALREADY_MEMBER)
    assert (await member_roles(client, owner, owner.organization_id))[member.user_id] == "member"

    yourself = await client.post(
        members_url(owner.organization_id), json={"email": owner.email, "role": "viewer"}, headers=owner.headers
    )
    assert_error(yourself, 409, "CONFLICT", ALREADY_MEMBER)


async def test_only_an_owner_can_add_an_owner(api, client):
    owner = await api.register()
    admin = await api.register()
    candidate = await api.register()
    await api.add_member(owner, admin, "admin")

    by_admin = await client.post(
        members_url(owner.organization_id), json={"email": candidate.email, "role": "owner"}, headers=admin.headers
    )
    assert_error(by_admin, 403, "FORBIDDEN", ONLY_OWNER)
    assert candidate.user_id not in await member_roles(client, owner, owner.organization_id)

    by_owner = await client.post(
        members_url(owner.organization_id), json={"email": candidate.email, "role": "owner"}, headers=owner.headers
    )
    assert by_owner.status_code == 201, by_owner.text
    assert by_owner.json()["role"] == "owner"


async def test_an_admin_can_add_admins_members_and_viewers(api, client):
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    for role in ("admin", "member", "viewer"):
        newcomer = await api.register()
        response = await client.post(
            members_url(owner.organization_id), json={"email": newcomer.email, "role": role}, headers=admin.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["role"] == role


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_below_admin_cannot_add_members(api, client, role):
    owner = await api.register()
    actor = await api.register()
    candidate = await api.register()
    await api.add_member(owner, actor, role)
    response = await client.post(
        members_url(owner.organization_id), json={"email": candidate.email, "role": "viewer"}, headers=actor.headers
    )
    assert_role_forbidden(response, role)
    assert candidate.user_id not in await member_roles(client, owner, owner.organization_id)


# ---------------------------------------------------------------------------------------------
# Change role
# ---------------------------------------------------------------------------------------------


async def test_owner_changes_a_members_role(api, client):
    owner = await api.register()
    member = await api.register()
    await api.add_member(owner, member, "member")
    response = await client.patch(
        members_url(owner.organization_id, member.user_id), json={"role": "admin"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == member.user_id
    assert body["email"] == member.email
    assert body["role"] == "admin"

    org = await client.get(f"/v1/organizations/{owner.organization_id}", headers=member.headers)
    assert org.json()["role"] == "admin"
    # the new role takes effect: the former member may now rename
    rename = await client.patch(
        f"/v1/organizations/{owner.organization_id}", json={"name": "Promoted"}, headers=member.headers
    )
    assert rename.status_code == 200, rename.text


async def test_admin_changes_roles_below_owner_only(api, client):
    owner = await api.register()
    admin = await api.register()
    member = await api.register()
    await api.add_member(owner, admin, "admin")
    await api.add_member(owner, member, "member")
    org = owner.organization_id

    demote = await client.patch(members_url(org, member.user_id), json={"role": "viewer"}, headers=admin.headers)
    assert demote.status_code == 200, demote.text
    assert demote.json()["role"] == "viewer"

    to_owner = await client.patch(members_url(org, member.user_id), json={"role": "owner"}, headers=admin.headers)
    assert_error(to_owner, 403, "FORBIDDEN", ONLY_OWNER)
    self_promote = await client.patch(members_url(org, admin.user_id), json={"role": "owner"}, headers=admin.headers)
    assert_error(self_promote, 403, "FORBIDDEN", ONLY_OWNER)
    demote_owner = await client.patch(members_url(org, owner.user_id), json={"role": "member"}, headers=admin.headers)
    assert_error(demote_owner, 403, "FORBIDDEN", ONLY_OWNER)

    roles = await member_roles(client, owner, org)
    assert roles == {owner.user_id: "owner", admin.user_id: "admin", member.user_id: "viewer"}


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_below_admin_cannot_change_roles(api, client, role):
    owner = await api.register()
    actor = await api.register()
    other = await api.register()
    await api.add_member(owner, actor, role)
    await api.add_member(owner, other, "viewer")
    response = await client.patch(
        members_url(owner.organization_id, other.user_id), json={"role": "member"}, headers=actor.headers
    )
    assert_role_forbidden(response, role)
    self_promote = await client.patch(
        members_url(owner.organization_id, actor.user_id), json={"role": "admin"}, headers=actor.headers
    )
    assert_role_forbidden(self_promote, role)
    roles = await member_roles(client, owner, owner.organization_id)
    assert roles[other.user_id] == "viewer"
    assert roles[actor.user_id] == role


async def test_the_last_owner_cannot_be_demoted_until_another_owner_exists(api, client):
    owner = await api.register()
    second = await api.register()
    await api.add_member(owner, second, "admin")
    org = owner.organization_id

    response = await client.patch(members_url(org, owner.user_id), json={"role": "admin"}, headers=owner.headers)
    assert_error(response, 409, "CONFLICT", LAST_OWNER)
    assert (await member_roles(client, owner, org))[owner.user_id] == "owner"

    promote = await client.patch(members_url(org, second.user_id), json={"role": "owner"}, headers=owner.headers)
    assert promote.status_code == 200, promote.text
    assert promote.json()["role"] == "owner"

    demote = await client.patch(members_url(org, owner.user_id), json={"role": "admin"}, headers=owner.headers)
    assert demote.status_code == 200, demote.text
    assert demote.json()["role"] == "admin"

    # now `second` is the only owner, and is protected in turn
    last = await client.patch(members_url(org, second.user_id), json={"role": "viewer"}, headers=second.headers)
    assert_error(last, 409, "CONFLICT", LAST_OWNER)
    assert await member_roles(client, second, org) == {owner.user_id: "admin", second.user_id: "owner"}


async def test_setting_the_last_owner_to_owner_again_is_allowed(api, client):
    owner = await api.register()
    response = await client.patch(
        members_url(owner.organization_id, owner.user_id), json={"role": "owner"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "owner"


async def test_concurrent_mutual_demotion_of_two_owners_keeps_one_owner(api, client):
    alice = await api.register()
    bob = await api.register()
    await api.add_member(alice, bob, "owner")
    org = alice.organization_id

    first, second = await asyncio.gather(
        client.patch(members_url(org, bob.user_id), json={"role": "member"}, headers=alice.headers),
        client.patch(members_url(org, alice.user_id), json={"role": "member"}, headers=bob.headers),
    )
    # Exactly one demotion wins. The other is refused: 409 if it ran while its caller was still an
    # owner, 403 if its caller had already been demoted to member by the time it was authorized.
    statuses = sorted([first.status_code, second.status_code])
    assert statuses in ([200, 403], [200, 409]), (first.text, second.text)
    loser = first if first.status_code != 200 else second
    if loser.status_code == 409:
        assert loser.json()["error"]["message"] == LAST_OWNER
    else:
        assert_role_forbidden(loser, "member")
    survivor = alice if first.status_code == 200 else bob
    roles = await member_roles(client, survivor, org)
    assert sorted(roles.values()) == ["member", "owner"]
    assert roles[survivor.user_id] == "owner"


async def test_change_role_of_a_non_member_is_404(api, client):
    owner = await api.register()
    stranger = await api.register()
    for user_id in (stranger.user_id, str(uuid.uuid4())):
        response = await client.patch(
            members_url(owner.organization_id, user_id), json={"role": "viewer"}, headers=owner.headers
        )
        assert_not_found(response, NO_MEMBER)
    malformed = await client.patch(
        members_url(owner.organization_id, "not-a-uuid"), json={"role": "viewer"}, headers=owner.headers
    )
    assert_not_found(malformed)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"role": ["This field is required."]}),
        ({"role": "root"}, {"role": [ROLE_CHOICES]}),
        ({"role": "admin", "email": "x@example.com"}, {"email": ["Extra inputs are not permitted"]}),
    ],
)
async def test_change_role_rejects_bad_bodies(api, client, body, fields):
    owner = await api.register()
    member = await api.register()
    await api.add_member(owner, member, "member")
    response = await client.patch(members_url(owner.organization_id, member.user_id), json=body, headers=owner.headers)
    assert_invalid(response, fields)


# ---------------------------------------------------------------------------------------------
# Remove and leave
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
async def test_a_member_can_leave(api, client, role):
    owner = await api.register()
    leaver = await api.register()
    await api.add_member(owner, leaver, role)
    org = owner.organization_id

    response = await client.delete(members_url(org, leaver.user_id), headers=leaver.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""

    assert leaver.user_id not in await member_roles(client, owner, org)
    # the organization is gone for them, everywhere
    assert_not_found(await client.get(f"/v1/organizations/{org}", headers=leaver.headers), ORG_NOT_FOUND)
    assert_not_found(await client.get("/v1/users/me", headers=leaver.in_org(org)), ORG_NOT_FOUND)
    assert_not_found(await client.get(members_url(org), headers=leaver.headers), ORG_NOT_FOUND)
    listed = await client.get("/v1/organizations", headers=leaver.headers)
    assert [o["id"] for o in listed.json()["data"]] == [leaver.organization_id]
    # without the header they fall back to their own organization
    me = await client.get("/v1/users/me", headers=leaver.headers)
    assert me.json()["organization"]["id"] == leaver.organization_id


async def test_the_last_owner_cannot_leave_until_another_owner_exists(api, client):
    owner = await api.register()
    other = await api.register()
    await api.add_member(owner, other, "admin")
    org = owner.organization_id

    response = await client.delete(members_url(org, owner.user_id), headers=owner.headers)
    assert_error(response, 409, "CONFLICT", LAST_OWNER)
    assert (await member_roles(client, owner, org))[owner.user_id] == "owner"

    promote = await client.patch(members_url(org, other.user_id), json={"role": "owner"}, headers=owner.headers)
    assert promote.status_code == 200, promote.text
    leave = await client.delete(members_url(org, owner.user_id), headers=owner.headers)
    assert leave.status_code == 204, leave.text
    assert await member_roles(client, other, org) == {other.user_id: "owner"}
    assert_not_found(await client.get(f"/v1/organizations/{org}", headers=owner.headers), ORG_NOT_FOUND)


async def test_concurrent_leave_of_both_owners_keeps_one_owner(api, client):
    alice = await api.register()
    bob = await api.register()
    await api.add_member(alice, bob, "owner")
    org = alice.organization_id

    first, second = await asyncio.gather(
        client.delete(members_url(org, alice.user_id), headers=alice.headers),
        client.delete(members_url(org, bob.user_id), headers=bob.headers),
    )
    assert sorted([first.status_code, second.status_code]) == [204, 409], (first.text, second.text)
    remaining = first if first.status_code == 409 else second
    assert remaining.json()["error"]["message"] == LAST_OWNER
    survivor = bob if first.status_code == 204 else alice
    assert await member_roles(client, survivor, org) == {survivor.user_id: "owner"}


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_below_admin_cannot_remove_others(api, client, role):
    owner = await api.register()
    actor = await api.register()
    other = await api.register()
    await api.add_member(owner, actor, role)
    await api.add_member(owner, other, "viewer")
    response = await client.delete(members_url(owner.organization_id, other.user_id), headers=actor.headers)
    assert_error(
        response,
        403,
        "FORBIDDEN",
        f"Your role '{role}' does not allow removing members; it requires 'admin'.",
        {"required_role": "admin", "role": role},
    )
    assert other.user_id in await member_roles(client, owner, owner.organization_id)


async def test_admin_removes_members_but_not_owners(api, client):
    owner = await api.register()
    admin = await api.register()
    member = await api.register()
    await api.add_member(owner, admin, "admin")
    await api.add_member(owner, member, "member")
    org = owner.organization_id

    removed = await client.delete(members_url(org, member.user_id), headers=admin.headers)
    assert removed.status_code == 204, removed.text
    assert_not_found(await client.get("/v1/users/me", headers=member.in_org(org)), ORG_NOT_FOUND)
    assert_not_found(
        await client.patch(f"/v1/organizations/{org}", json={"name": "Gone"}, headers=member.in_org(org)),
        ORG_NOT_FOUND,
    )

    not_owner = await client.delete(members_url(org, owner.user_id), headers=admin.headers)
    assert_error(not_owner, 403, "FORBIDDEN", ONLY_OWNER)
    assert await member_roles(client, owner, org) == {owner.user_id: "owner", admin.user_id: "admin"}


async def test_an_owner_removes_another_owner(api, client):
    owner = await api.register()
    co_owner = await api.register()
    await api.add_member(owner, co_owner, "owner")
    response = await client.delete(members_url(owner.organization_id, co_owner.user_id), headers=owner.headers)
    assert response.status_code == 204, response.text
    assert await member_roles(client, owner, owner.organization_id) == {owner.user_id: "owner"}
    assert_not_found(
        await client.get(f"/v1/organizations/{owner.organization_id}", headers=co_owner.headers), ORG_NOT_FOUND
    )


async def test_remove_a_non_member_is_404(api, client):
    owner = await api.register()
    stranger = await api.register()
    for user_id in (stranger.user_id, str(uuid.uuid4())):
        response = await client.delete(members_url(owner.organization_id, user_id), headers=owner.headers)
        assert_not_found(response, NO_MEMBER)
    assert_not_found(await client.delete(members_url(owner.organization_id, "not-a-uuid"), headers=owner.headers))
    # the stranger keeps their own organization
    assert stranger.user_id in await member_roles(client, stranger, stranger.organization_id)


# ---------------------------------------------------------------------------------------------
# Foreign organizations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["foreign", "unknown"])
async def test_member_routes_of_a_foreign_organization_are_404(api, client, target):
    alice = await api.register()
    bob = await api.register()
    bob_member = await api.register()
    await api.add_member(bob, bob_member, "member")
    org = bob.organization_id if target == "foreign" else str(uuid.uuid4())

    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", members_url(org), None),
        ("POST", members_url(org), {"email": alice.email, "role": "owner"}),
        ("PATCH", members_url(org, bob_member.user_id), {"role": "viewer"}),
        ("PATCH", members_url(org, bob.user_id), {"role": "viewer"}),
        ("DELETE", members_url(org, bob_member.user_id), None),
        ("DELETE", members_url(org, bob.user_id), None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert_not_found(response, ORG_NOT_FOUND)

    assert await member_roles(client, bob, bob.organization_id) == {
        bob.user_id: "owner",
        bob_member.user_id: "member",
    }


async def test_member_routes_with_a_malformed_organization_id_are_404(api, client):
    account = await api.register()
    assert_not_found(await client.get(members_url("nope"), headers=account.headers))
    assert_not_found(
        await client.post(members_url("nope"), json={"email": account.email, "role": "member"}, headers=account.headers)
    )
    assert_not_found(
        await client.patch(members_url("nope", account.user_id), json={"role": "member"}, headers=account.headers)
    )
    assert_not_found(await client.delete(members_url("nope", account.user_id), headers=account.headers))


# ---------------------------------------------------------------------------------------------
# API-key callers
# ---------------------------------------------------------------------------------------------


async def test_an_admin_api_key_manages_members_below_owner(api, client):
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    org = owner.organization_id
    created = await client.post(
        "/v1/api-keys", json={"name": "admin's", "scopes": ["read", "write", "admin"]}, headers=admin.in_org(org)
    )
    key = created.json()
    newcomer = await api.register()

    added = await client.post(members_url(org), json={"email": newcomer.email, "role": "member"}, headers=bearer(key))
    assert added.status_code == 201, added.text
    await api.verify_email(newcomer)
    token = await token_from_mail(api.queue, newcomer.email, "/v1/invitations/")
    accepted = await client.post(f"/v1/invitations/{token}/accept", headers=newcomer.headers)
    assert accepted.status_code == 201, accepted.text
    changed = await client.patch(members_url(org, newcomer.user_id), json={"role": "viewer"}, headers=bearer(key))
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "viewer"

    other = await api.register()
    as_owner = await client.post(members_url(org), json={"email": other.email, "role": "owner"}, headers=bearer(key))
    assert_error(as_owner, 403, "FORBIDDEN", ONLY_OWNER)
    remove_owner = await client.delete(members_url(org, owner.user_id), headers=bearer(key))
    assert_error(remove_owner, 403, "FORBIDDEN", ONLY_OWNER)

    removed = await client.delete(members_url(org, newcomer.user_id), headers=bearer(key))
    assert removed.status_code == 204, removed.text
    assert await member_roles(client, owner, org) == {owner.user_id: "owner", admin.user_id: "admin"}


@pytest.mark.parametrize("scopes", [["read"], ["read", "write"]])
async def test_an_api_key_without_admin_scope_cannot_add_or_change_members(api, client, scopes):
    owner = await api.register()
    member = await api.register()
    await api.add_member(owner, member, "member")
    key = await owner.create_key(scopes=scopes)
    org = owner.organization_id

    listed = await client.get(members_url(org), headers=bearer(key))
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) == 2

    candidate = await api.register()
    add = await client.post(members_url(org), json={"email": candidate.email}, headers=bearer(key))
    assert_scope_forbidden(add, "admin")
    change = await client.patch(members_url(org, member.user_id), json={"role": "admin"}, headers=bearer(key))
    assert_scope_forbidden(change, "admin")


@pytest.mark.parametrize("scopes", [["read"], ["read", "write"]])
async def test_an_api_key_without_admin_scope_cannot_remove_members(api, client, scopes):
    """An API key has scopes, not a role: the refusal names the missing scope, like every other key check."""
    owner = await api.register()
    member = await api.register()
    await api.add_member(owner, member, "member")
    key = await owner.create_key(scopes=scopes)

    response = await client.delete(members_url(owner.organization_id, member.user_id), headers=bearer(key))
    assert_scope_forbidden(response, "admin")
    assert member.user_id in await member_roles(client, owner, owner.organization_id)


async def test_an_api_key_cannot_touch_members_of_another_organization(api, client):
    alice = await api.register()
    bob = await api.register()
    key = await alice.create_key(scopes=["read", "write", "admin"])
    org = bob.organization_id
    assert_not_found(await client.get(members_url(org), headers=bearer(key)), ORG_NOT_FOUND)
    assert_not_found(
        await client.post(members_url(org), json={"email": alice.email}, headers=bearer(key)), ORG_NOT_FOUND
    )
    assert_not_found(
        await client.patch(members_url(org, bob.user_id), json={"role": "viewer"}, headers=bearer(key)),
        ORG_NOT_FOUND,
    )
    assert_not_found(await client.delete(members_url(org, bob.user_id), headers=bearer(key)), ORG_NOT_FOUND)
    assert await member_roles(client, bob, org) == {bob.user_id: "owner"}
