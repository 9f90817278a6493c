"""`/v1/staff/organizations` and `/v1/staff/users`: the staff console's searches and an organization whole."""

from __future__ import annotations

import uuid

import httpx

from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api

ORGANIZATIONS = "/v1/staff/organizations"
USERS = "/v1/staff/users"
STAFF_ONLY = "This action is for platform staff only."


async def _ids(client: httpx.AsyncClient, url: str, staff: Account, **params: str) -> list[str]:
    response = await client.get(url, params=params, headers=staff.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_only_staff_may_search_or_read(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    key = await owner.create_key(scopes=["read", "write", "admin"])
    for url in (ORGANIZATIONS, f"{ORGANIZATIONS}/{owner.organization_id}", USERS):
        assert_error(await client.get(url, headers=owner.headers), 403, "FORBIDDEN", STAFF_ONLY)
        assert (await client.get(url)).status_code == 401
        keyed = await client.get(url, headers={"Authorization": f"Bearer {key['key']}"})
        assert keyed.status_code == 403, keyed.text  # an API key is never staff, even a staff member's


async def test_staff_find_organizations_by_name_slug_id_or_a_member_s_email(
    api: Api, client: httpx.AsyncClient
) -> None:
    acme = await api.register("ceo@acme.example", company="Acme Rockets")
    globex = await api.register("boss@globex.example", company="Globex 100%_Corp")
    staff = await api.staff()

    assert await _ids(client, ORGANIZATIONS, staff, q="rocket") == [acme.organization_id]
    assert await _ids(client, ORGANIZATIONS, staff, q="ACME-ROCK") == [acme.organization_id]  # the slug
    assert await _ids(client, ORGANIZATIONS, staff, q=globex.organization_id) == [globex.organization_id]
    assert await _ids(client, ORGANIZATIONS, staff, q="boss@globex") == [globex.organization_id]
    assert await _ids(client, ORGANIZATIONS, staff, q="100%_") == [globex.organization_id]  # literally
    assert await _ids(client, ORGANIZATIONS, staff, q="%") == [globex.organization_id]
    assert await _ids(client, ORGANIZATIONS, staff, q="nothing like it") == []
    assert await _ids(client, ORGANIZATIONS, staff, q=str(uuid.uuid4())) == []
    everyone = await _ids(client, ORGANIZATIONS, staff)
    assert everyone[:2] == [staff.organization_id, globex.organization_id]  # newest first
    assert acme.organization_id in everyone

    first = await client.get(ORGANIZATIONS, params={"limit": 1}, headers=staff.headers)
    assert first.json()["has_more"] is True
    second = await client.get(
        ORGANIZATIONS, params={"limit": 1, "cursor": first.json()["next_cursor"]}, headers=staff.headers
    )
    assert [o["id"] for o in second.json()["data"]] == [globex.organization_id]
    assert set(first.json()["data"][0]) == {"id", "name", "slug", "created_at"}


async def test_staff_find_users_with_their_organizations(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("owner@acme.example", company="Acme")
    member = await api.register("Member@Elsewhere.example", company="Elsewhere")
    await api.add_member(owner, member, "admin")
    staff = await api.staff()

    response = await client.get(USERS, params={"q": "member@ELSEWHERE"}, headers=staff.headers)

    assert response.status_code == 200, response.text
    [found] = response.json()["data"]
    assert found["id"] == member.user_id and found["email"] == "member@elsewhere.example"
    assert found["is_active"] is True and found["is_staff"] is False and found["email_verified"] is True
    assert [(o["organization_id"], o["role"]) for o in found["organizations"]] == [
        (member.organization_id, "owner"),
        (owner.organization_id, "admin"),
    ]
    assert await _ids(client, USERS, staff, q=owner.user_id) == [owner.user_id]
    assert (await _ids(client, USERS, staff, q="Test User"))[:1] == [staff.user_id]  # by name, newest first
    assert await _ids(client, USERS, staff, q="_") == []
    staff_row = (await client.get(USERS, params={"q": staff.email}, headers=staff.headers)).json()["data"][0]
    assert staff_row["is_staff"] is True


async def test_staff_see_an_organization_whole(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register(company="Seated Co")
    license_ = await api.issue_license(owner, seats=3)
    acquired = await client.post(
        "/api/v1/licenses/acquire/",
        json={
            "license_key": license_["key_string"],
            "hardware_id": "machine-1",
            "ip_address": "203.0.113.7",
            "client_version": "1.0.0",
        },
        headers=owner.headers,
    )
    assert acquired.status_code in (200, 201), acquired.text
    staff = await api.staff()

    response = await client.get(f"{ORGANIZATIONS}/{owner.organization_id}", headers=staff.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == owner.organization_id and body["name"] == "Seated Co"
    assert body["subscription"]["plan"] == "free" and body["subscription"]["status"] == "active"
    assert {"current_period_end", "cancel_at_period_end", "limits", "seats"} <= set(body["subscription"])
    usage = await client.get("/v1/usage", headers=owner.headers)
    assert body["usage"] == usage.json()  # as GET /v1/usage computes it
    [shown] = body["licenses"]
    assert shown["id"] == license_["id"] and shown["seats"] == 3 and shown["seats_in_use"] == 1
    assert body["live_seats"] == 1
    assert [(m["user_id"], m["role"]) for m in body["members"]] == [(owner.user_id, "owner")]
    assert body["member_count"] == 1


async def test_an_unknown_or_malformed_organization_id_is_a_404(api: Api, client: httpx.AsyncClient) -> None:
    staff = await api.staff()

    assert_not_found(
        await client.get(f"{ORGANIZATIONS}/{uuid.uuid4()}", headers=staff.headers), "Organization not found."
    )
    # A malformed id names nothing, exactly like an unknown one (the platform's rule for path ids).
    assert_not_found(await client.get(f"{ORGANIZATIONS}/not-a-uuid", headers=staff.headers))


async def test_bad_query_parameters_are_validation_errors(api: Api, client: httpx.AsyncClient) -> None:
    staff = await api.staff()
    for params in ({"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"limit": "0"}, {"limit": "101"}, {"limit": "many"}):
        for url in (ORGANIZATIONS, USERS):
            response = await client.get(url, params=params, headers=staff.headers)
            assert response.status_code == 422, (url, params, response.text)
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_forged_cursor_is_a_validation_error(api: Api, client: httpx.AsyncClient) -> None:
    staff = await api.staff()

    for url in (ORGANIZATIONS, USERS):
        response = await client.get(url, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=staff.headers)
        assert_invalid(response, {"cursor": ["Invalid cursor."]})


SESSIONS = "/v1/staff/licenses/{}/sessions"


async def _seat(client: httpx.AsyncClient, owner: Account, key: str, hardware_id: str, **headers: str) -> str:
    acquired = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": key, "hardware_id": hardware_id, "ip_address": "203.0.113.7", "client_version": "2.1.0"},
        headers={**owner.headers, **headers},
    )
    assert acquired.status_code == 200, acquired.text
    session_id: str = acquired.json()["session_id"]
    return session_id


async def test_staff_see_any_license_s_live_sessions_as_its_admins_do(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register(company="Seated Co")
    license_ = await api.issue_license(owner, seats=3)
    first = await _seat(client, owner, license_["key_string"], "machine-1")
    await _seat(client, owner, license_["key_string"], "machine-2")
    test_license = await client.post(
        "/api/v1/licenses/", json={"tier": "pro", "seats": 2}, headers={**owner.headers, "X-Backplane-Mode": "test"}
    )
    assert test_license.status_code == 201, test_license.text
    await _seat(client, owner, test_license.json()["key_string"], "machine-t", **{"X-Backplane-Mode": "test"})
    staff = await api.staff()

    seen = await client.get(SESSIONS.format(license_["id"]), headers=staff.headers)
    assert seen.status_code == 200, seen.text
    own = await client.get(f"/api/v1/licenses/{license_['id']}/sessions/", headers=owner.headers)
    assert seen.json() == own.json()  # the same shape and the same sessions
    assert seen.json()["count"] == 2 and seen.json()["seats"] == 3
    row = next(s for s in seen.json()["sessions"] if s["session_id"] == first)
    assert (row["hardware_id"], row["ip_address"], row["client_version"]) == ("machine-1", "203.0.113.7", "2.1.0")
    limited = await client.get(SESSIONS.format(license_["id"]), params={"limit": 1}, headers=staff.headers)
    assert limited.json()["count"] == 2 and len(limited.json()["sessions"]) == 1
    # A test license's sessions too, whatever mode the staff member is in.
    tested = await client.get(SESSIONS.format(test_license.json()["id"]), headers=staff.headers)
    assert [s["hardware_id"] for s in tested.json()["sessions"]] == ["machine-t"]


async def test_only_staff_see_a_license_s_sessions_and_an_unknown_one_is_a_404(
    api: Api, client: httpx.AsyncClient
) -> None:
    owner = await api.register()
    license_ = await api.issue_license(owner, seats=1)
    key = await owner.create_key(scopes=["read", "write", "admin"])
    url = SESSIONS.format(license_["id"])
    assert_error(await client.get(url, headers=owner.headers), 403, "FORBIDDEN", STAFF_ONLY)  # even its owner
    assert (await client.get(url, headers={"Authorization": f"Bearer {key['key']}"})).status_code == 403
    assert (await client.get(url)).status_code == 401
    staff = await api.staff()
    assert_not_found(await client.get(SESSIONS.format(uuid.uuid4()), headers=staff.headers), "License not found.")
    assert_not_found(await client.get(SESSIONS.format("not-a-uuid"), headers=staff.headers))
    for limit in ("0", "1001", "many"):
        response = await client.get(url, params={"limit": limit}, headers=staff.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR", response.text
