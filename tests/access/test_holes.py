"""The ways around authorization that the review found, each closed (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.assertions import assert_error

KEY_REVOKED = "This API key has been revoked."


def bearer(key: dict[str, Any] | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key'] if isinstance(key, dict) else key}"}


def licensing_error(response: Any, status: int, error: str, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "detail": detail}


# --- idempotency keys belong to their caller ---------------------------------------------------


async def test_a_viewer_replaying_the_owners_idempotency_key_gets_its_own_403_not_the_owners_key(api, client, query):
    owner = await api.register()
    viewer = await api.register()
    await api.add_member(owner, viewer, "viewer")
    body = {"name": "deploy", "scopes": ["read", "write", "admin"]}
    first = await client.post("/v1/api-keys", json=body, headers={**owner.headers, "Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    secret = first.json()["key"]

    replay = await client.post(
        "/v1/api-keys", json=body, headers={**viewer.in_org(owner.organization_id), "Idempotency-Key": "k-1"}
    )
    assert replay.status_code == 403, replay.text
    assert "Idempotent-Replayed" not in replay.headers
    assert secret not in replay.text
    assert replay.json()["error"]["code"] == "FORBIDDEN"


async def test_another_admin_using_the_same_idempotency_key_makes_a_fresh_request(api, client):
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    body = {"name": "deploy", "scopes": ["read"]}
    first = await client.post("/v1/api-keys", json=body, headers={**owner.headers, "Idempotency-Key": "shared"})
    second = await client.post(
        "/v1/api-keys", json=body, headers={**admin.in_org(owner.organization_id), "Idempotency-Key": "shared"}
    )
    assert first.status_code == second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    again = await client.post("/v1/api-keys", json=body, headers={**owner.headers, "Idempotency-Key": "shared"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_a_stored_response_holds_no_plain_secret(api, client, query):
    owner = await api.register()
    created = await client.post(
        "/v1/api-keys", json={"name": "ci"}, headers={**owner.headers, "Idempotency-Key": "store-1"}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    [(body,)] = await query("SELECT response_body FROM idempotency_keys WHERE key = 'store-1'")
    assert body is not None and len(body) > 0
    assert secret.encode() not in bytes(body)
    assert created.json()["id"].encode() not in bytes(body)  # nothing of the response is readable


async def test_two_keys_of_one_organization_do_not_share_idempotency_keys(api, client):
    owner = await api.register()
    one = await owner.create_key(scopes=["read", "write", "admin"])
    two = await owner.create_key(scopes=["read", "write", "admin"])
    body = {"name": "x"}
    a = await client.post("/v1/api-keys", json=body, headers={**bearer(one), "Idempotency-Key": "same"})
    b = await client.post("/v1/api-keys", json=body, headers={**bearer(two), "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


# --- a key acts within its creator's current role ---------------------------------------------


async def _admin_with_key(api: Any, owner: Any) -> tuple[Any, dict[str, Any]]:
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    response = await admin.client.post(
        "/v1/api-keys",
        json={"name": "admin's", "scopes": ["read", "write", "admin"]},
        headers=admin.in_org(owner.organization_id),
    )
    assert response.status_code == 201, response.text
    return admin, response.json()


async def test_a_removed_admins_keys_are_revoked_and_say_why(api, client):
    owner = await api.register()
    admin, key = await _admin_with_key(api, owner)
    assert (await client.get("/v1/api-keys", headers=bearer(key))).status_code == 200
    removed = await client.delete(
        f"/v1/organizations/{owner.organization_id}/members/{admin.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204, removed.text

    assert_error(await client.get("/v1/users/me", headers=bearer(key)), 401, "UNAUTHORIZED", KEY_REVOKED)
    shown = await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers)
    assert shown.json()["revoked_reason"] == "creator_left"
    assert shown.json()["revoked_at"] is not None


async def test_an_admin_who_leaves_takes_their_keys(api, client):
    owner = await api.register()
    admin, key = await _admin_with_key(api, owner)
    left = await client.delete(
        f"/v1/organizations/{owner.organization_id}/members/{admin.user_id}",
        headers=admin.in_org(owner.organization_id),
    )
    assert left.status_code == 204, left.text
    assert_error(await client.get("/v1/users/me", headers=bearer(key)), 401, "UNAUTHORIZED", KEY_REVOKED)


async def test_a_demoted_admins_key_loses_what_the_new_role_lacks(api, client):
    owner = await api.register()
    admin, key = await _admin_with_key(api, owner)
    demoted = await client.patch(
        f"/v1/organizations/{owner.organization_id}/members/{admin.user_id}",
        json={"role": "member"},
        headers=owner.headers,
    )
    assert demoted.status_code == 200, demoted.text
    refused = await client.get("/v1/api-keys", headers=bearer(key))
    assert_error(
        refused,
        403,
        "FORBIDDEN",
        "This API key's creator no longer has a role that allows 'admin' (their role is 'member').",
        {"required_scope": "admin", "creator_role": "member"},
    )
    me = await client.get("/v1/users/me", headers=bearer(key))
    assert me.status_code == 200
    assert me.json()["auth"]["scopes"] == ["read", "write"]
    assert (await client.post("/v1/files/upload-url", json={}, headers=bearer(key))).status_code != 403


async def test_a_deactivated_users_keys_are_revoked(api, client):
    owner = await api.register()
    key = await owner.create_key(scopes=["read"])
    other = await api.register()
    await api.add_member(owner, other, "owner")  # so the owner may leave for good
    gone = await client.delete("/v1/users/me", headers=owner.headers)
    assert gone.status_code == 204, gone.text
    assert_error(await client.get("/v1/users/me", headers=bearer(key)), 401, "UNAUTHORIZED", KEY_REVOKED)
    listed = await client.get(
        "/v1/api-keys", params={"include_revoked": "true"}, headers=other.in_org(owner.organization_id)
    )
    assert [k["revoked_reason"] for k in listed.json()["data"]] == ["creator_deactivated"]


async def test_owner_only_actions_need_an_owner_or_an_owners_admin_key(api, client):
    owner = await api.register()
    admin, admin_key = await _admin_with_key(api, owner)
    owner_key = await owner.create_key(scopes=["read", "write", "admin"])
    checkout = {
        "price_id": "price_pro_monthly",
        "seats": 2,
        "success_url": "https://app.example.com/ok",
        "cancel_url": "https://app.example.com/no",
    }
    url = "/api/v1/subscriptions/checkout/"
    for headers in (admin.in_org(owner.organization_id), bearer(admin_key)):
        refused = await client.post(url, json=checkout, headers=headers)
        assert refused.status_code == 403, refused.text
    licensing_error(
        await client.post(url, json=checkout, headers=admin.in_org(owner.organization_id)),
        403,
        "Forbidden",
        "Your role 'admin' does not allow this action; it requires 'owner'.",
    )
    assert (await client.post(url, json=checkout, headers=owner.headers)).status_code == 200
    assert (await client.post(url, json=checkout, headers=bearer(owner_key))).status_code == 200


async def test_billing_needs_live_mode(api, client):
    owner = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    licensing_error(
        await client.get("/api/v1/subscriptions/current/", headers=bearer(test_key)),
        403,
        "Forbidden",
        "This action needs live mode: use a live API key (`coexai_live_…`) or a signed-in user without "
        "`X-Backplane-Mode: test`.",
    )
    assert_error(
        await client.get("/v1/subscriptions", headers=bearer(test_key)),
        403,
        "LIVE_MODE_REQUIRED",
        "This action needs live mode: use a live API key (`coexai_live_…`) or a signed-in user without "
        "`X-Backplane-Mode: test`.",
    )
    assert (await client.get("/v1/subscriptions/plans", headers=bearer(test_key))).status_code == 200


# --- modes and where live licenses come from ---------------------------------------------------

LICENSES = "/api/v1/licenses/"


async def _free_license(client: Any, account: Any) -> dict[str, Any]:
    listed = await client.get(LICENSES, headers=account.headers)
    assert listed.status_code == 200, listed.text
    [free] = listed.json()["licenses"]
    return free


async def test_registration_gives_the_organization_one_free_license(api, client):
    owner = await api.register()
    free = await _free_license(client, owner)
    assert (free["tier"], free["seats"], free["expiry_date"], free["livemode"]) == ("free", 1, None, True)
    assert free["status"] == "active"


async def test_a_customer_admin_cannot_create_or_enlarge_a_live_license(api, client):
    owner = await api.register()
    free = await _free_license(client, owner)
    detail = (
        "Live licenses come from your subscription: buy one with POST /api/v1/subscriptions/checkout/ and change "
        "its seats with POST /api/v1/subscriptions/update/; a test-mode key may create test licenses."
    )
    for headers in (owner.headers, bearer(await owner.create_key(scopes=["read", "write", "admin"]))):
        created = await client.post(LICENSES, json={"tier": "enterprise", "seats": 100000}, headers=headers)
        licensing_error(created, 403, "Forbidden", detail)
    for change in ({"seats": 500}, {"expiry_date": None}, {"tier": "enterprise"}, {"is_active": True}):
        enlarged = await client.patch(f"{LICENSES}{free['id']}/", json=change, headers=owner.headers)
        assert enlarged.status_code == 403, (change, enlarged.text)
        assert enlarged.json()["error"] == "Forbidden"
    suspended = await client.patch(f"{LICENSES}{free['id']}/", json={"suspended": True}, headers=owner.headers)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert (await _free_license(client, owner))["seats"] == 1


async def test_a_test_key_issues_test_licenses_within_the_test_limits(api, client):
    owner = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    created = await client.post(LICENSES, json={"tier": "pro", "seats": 5}, headers=bearer(test_key))
    assert created.status_code == 201, created.text
    assert created.json()["livemode"] is False
    assert created.json()["expiry_date"] is not None
    too_many = await client.post(LICENSES, json={"tier": "pro", "seats": 6}, headers=bearer(test_key))
    assert too_many.status_code == 400
    assert too_many.json() == {"errors": {"seats": ["A test-mode license has at most 5 seats."]}}
    grown = await client.patch(f"{LICENSES}{created.json()['id']}/", json={"seats": 50}, headers=bearer(test_key))
    assert grown.json() == {"errors": {"seats": ["A test-mode license has at most 5 seats."]}}
    validated = await client.post(f"{LICENSES}validate/", json={"key_string": created.json()["key_string"]})
    assert validated.json()["license"]["livemode"] is False


async def test_modes_do_not_see_each_others_licenses(api, client):
    owner = await api.register()
    live = await _free_license(client, owner)
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    live_key = await owner.create_key(scopes=["read", "write", "admin"])
    test_license = (await client.post(LICENSES, json={"tier": "pro", "seats": 2}, headers=bearer(test_key))).json()
    gone = {"error": "Not found", "detail": "License not found."}

    for key, foreign in ((test_key, live), (live_key, test_license)):
        for method, path, body in (
            ("GET", f"{LICENSES}{foreign['id']}/", None),
            ("PATCH", f"{LICENSES}{foreign['id']}/", {"suspended": True}),
            ("GET", f"{LICENSES}{foreign['id']}/download/", None),
            ("GET", f"{LICENSES}{foreign['id']}/sessions/", None),
        ):
            response = await client.request(method, path, json=body, headers=bearer(key))
            assert (response.status_code, response.json()) == (404, gone), (method, path)
        acquired = await client.post(
            f"{LICENSES}acquire/",
            json={"license_key": foreign["key_string"], "hardware_id": "hw-1"},
            headers=bearer(key),
        )
        assert (acquired.status_code, acquired.json()) == (404, gone)
        listed = await client.get(LICENSES, headers=bearer(key))
        assert foreign["id"] not in [lic["id"] for lic in listed.json()["licenses"]]
    # a test seat stays in test mode: a live key cannot heartbeat or release it
    seat = await client.post(
        f"{LICENSES}acquire/",
        json={"license_key": test_license["key_string"], "hardware_id": "hw-2"},
        headers=bearer(test_key),
    )
    assert seat.status_code == 200, seat.text
    session_id = seat.json()["session_id"]
    heartbeat = await client.patch(f"{LICENSES}sessions/{session_id}/heartbeat/", headers=bearer(live_key))
    assert heartbeat.status_code == 404
    assert (await client.delete(f"{LICENSES}sessions/{session_id}/", headers=bearer(live_key))).status_code == 404
    assert (await client.delete(f"{LICENSES}sessions/{session_id}/", headers=bearer(test_key))).status_code == 200


async def test_license_files_state_their_mode(api, client):
    owner = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    test_license = (await client.post(LICENSES, json={"tier": "pro", "seats": 1}, headers=bearer(test_key))).json()
    test_file = await client.get(f"{LICENSES}{test_license['id']}/download/", headers=bearer(test_key))
    live_file = await client.get(
        f"{LICENSES}{(await _free_license(client, owner))['id']}/download/", headers=owner.headers
    )
    assert test_file.json()["payload"]["livemode"] is False
    assert live_file.json()["payload"]["livemode"] is True


@pytest.mark.parametrize("seats", [0, 3])
async def test_free_license_seats_is_configurable(settings, seats):
    from httpx import ASGITransport, AsyncClient

    from backplane.app import create_app
    from tests.fixtures.auth import Api

    app = create_app(settings.model_copy(update={"free_license_seats": seats}))
    transport = ASGITransport(app=app)
    async with app.router.lifespan_context(app), AsyncClient(transport=transport, base_url="http://testserver") as http:
        owner = await Api(http, app.state.queue).register()
        listed = (await http.get(LICENSES, headers=owner.headers)).json()["licenses"]
    assert [lic["seats"] for lic in listed] == ([seats] if seats else [])


# --- staff ------------------------------------------------------------------------------------


async def test_staff_issue_and_change_licenses_of_any_organization_and_it_is_recorded(api, client, make_staff):
    customer = await api.register()
    operator = await api.register()
    assert "is now staff" in await make_staff(operator.email)
    issued = await client.post(
        LICENSES,
        json={"tier": "enterprise", "seats": 50, "organization_id": customer.organization_id},
        headers=operator.headers,
    )
    assert issued.status_code == 201, issued.text
    license_ = issued.json()
    assert (license_["organization"], license_["seats"], license_["livemode"]) == (
        customer.organization_id,
        50,
        True,
    )
    changed = await client.patch(f"{LICENSES}{license_['id']}/", json={"seats": 60}, headers=operator.headers)
    assert changed.status_code == 200, changed.text
    seen = await client.get(f"{LICENSES}{license_['id']}/", headers=customer.headers)
    assert seen.json()["seats"] == 60

    actions = await client.get("/v1/staff/actions", headers=operator.headers)
    assert actions.status_code == 200, actions.text
    rows = [(a["actor"], a["action"], a["target_id"]) for a in actions.json()["data"]]
    assert (operator.email, "license.create", license_["id"]) in rows
    assert (operator.email, "license.update", license_["id"]) in rows
    refused = await client.get("/v1/staff/actions", headers=customer.headers)
    assert_error(refused, 403, "FORBIDDEN", "This action is for platform staff only.")


async def test_staff_must_name_an_existing_organization(api, client, make_staff):
    operator = await api.register()
    await make_staff(operator.email)
    missing = await client.post(LICENSES, json={"tier": "pro", "seats": 1}, headers=operator.headers)
    assert missing.json() == {"errors": {"organization_id": ["Staff name the organization the license is for."]}}
    unknown = await client.post(
        LICENSES,
        json={"tier": "pro", "seats": 1, "organization_id": "00000000-0000-0000-0000-000000000000"},
        headers=operator.headers,
    )
    licensing_error(unknown, 404, "Not found", "Organization not found.")


async def test_a_customer_cannot_issue_a_license_to_another_organization(api, client):
    owner = await api.register()
    other = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    refused = await client.post(
        LICENSES,
        json={"tier": "pro", "seats": 1, "organization_id": other.organization_id},
        headers=bearer(test_key),
    )
    licensing_error(refused, 403, "Forbidden", "Only platform staff may issue licenses to another organization.")


async def test_secrets_rotate_moves_stored_responses_to_the_newest_key(api, client, settings, db):
    from cryptography.fernet import Fernet
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from backplane.core.crypto import Encryptor
    from backplane.core.db import unit_of_work
    from backplane.idempotency.service import reencrypt_responses

    owner = await api.register()
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers={**owner.headers, "Idempotency-Key": "r1"})
    new_key = Fernet.generate_key()
    ring = Encryptor([new_key, *settings.encryption_key_ring])
    async with unit_of_work(async_sessionmaker(db)) as session:
        assert await reencrypt_responses(session, ring) == 1
    async with db.begin() as connection:
        from sqlalchemy import text

        [(body,)] = list(await connection.execute(text("SELECT response_body FROM idempotency_keys")))
    assert Encryptor([new_key]).decrypt(bytes(body)) == created.content
