"""Licenses: issue, list, get, change; the public validation check."""

from __future__ import annotations

import re

import httpx

from backplane.licenses import keys
from tests.fixtures.assertions import assert_licensing_error, assert_licensing_fields
from tests.fixtures.auth import Account, Api
from tests.licenses.conftest import create_license

KEY_SHAPE = re.compile(r"^PROD-\d{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$")


def test_keys_issued_before_stay_valid_and_are_read_as_typed() -> None:
    # Issued by earlier releases: the check symbol must not change, or every key sold stops working.
    for issued in ("PROD-2026-3JHQ-DAR8-514V-7A8V", "AB-1999-KXR3-RAQK-FE94-C6RK", "ZZZZZZZZ-2031-BN64-W7FR-NMK7-BYYK"):
        assert keys.normalize(issued) == issued
        assert keys.normalize(f"  {issued.lower()} ") == issued
    assert keys.normalize("prod-2026-3jhq-dar8-5i4v-7a8v") == "PROD-2026-3JHQ-DAR8-514V-7A8V"  # I read as 1
    assert keys.normalize("PROD-2026-3JHQ-DAR8-514V-7A8W") is None  # one symbol mistyped
    assert keys.normalize("PROD-2026-3JHQ-DAR8-514V") is None


async def test_staff_issue_a_license(owner: Account) -> None:
    created = await create_license(owner, tier="pro", seats=5, metadata={"customer": "Acme"})
    assert KEY_SHAPE.match(created["key_string"]), created["key_string"]
    assert keys.normalize(created["key_string"]) == created["key_string"]
    assert {
        k: created[k] for k in ("tier", "seats", "is_active", "status", "metadata", "organization", "seats_in_use")
    } == {
        "tier": "pro",
        "seats": 5,
        "is_active": True,
        "status": "active",
        "metadata": {"customer": "Acme"},
        "organization": owner.organization_id,
        "seats_in_use": 0,
    }


async def test_a_member_cannot_issue_licenses_but_can_read_them(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    member = await api.register("member@example.com")
    await api.add_member(owner, member, "member")
    created = await create_license(owner)
    headers = member.in_org(owner.organization_id)
    refused = await client.post("/api/v1/licenses/", json={"tier": "pro", "seats": 1}, headers=headers)
    assert_licensing_error(
        refused, 403, "Forbidden", "Your role 'member' does not allow this action; it requires 'admin'."
    )
    assert (await client.get(f"/api/v1/licenses/{created['id']}/", headers=headers)).status_code == 200


async def test_list_filters_and_pages_like_the_guide(owner: Account, client: httpx.AsyncClient) -> None:
    for tier in ("pro", "pro", "enterprise"):
        await create_license(owner, tier=tier)
    suspended = await create_license(owner, tier="pro")
    await client.patch(f"/api/v1/licenses/{suspended['id']}/", json={"suspended": True}, headers=owner.headers)

    everything = (await client.get("/api/v1/licenses/", headers=owner.headers)).json()
    assert everything["count"] == 4 and everything["next"] is None and everything["previous"] is None
    active = (await client.get("/api/v1/licenses/", params={"is_active": "true"}, headers=owner.headers)).json()
    assert active["count"] == 3
    assert all(lic["is_active"] for lic in active["licenses"])
    inactive = (await client.get("/api/v1/licenses/?is_active=false", headers=owner.headers)).json()
    assert [lic["id"] for lic in inactive["licenses"]] == [suspended["id"]]
    enterprise = (await client.get("/api/v1/licenses/?tier=enterprise", headers=owner.headers)).json()
    assert [lic["tier"] for lic in enterprise["licenses"]] == ["enterprise"]

    first = (await client.get("/api/v1/licenses/?page_size=3", headers=owner.headers)).json()
    assert len(first["licenses"]) == 3 and first["previous"] is None
    second = (await client.get(first["next"].replace("http://testserver", ""), headers=owner.headers)).json()
    assert len(second["licenses"]) == 1 and second["next"] is None and "page=1" in second["previous"]
    ids = {lic["id"] for lic in first["licenses"]} | {lic["id"] for lic in second["licenses"]}
    assert len(ids) == 4


async def test_list_rejects_bad_filters(owner: Account, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/licenses/?tier=platinum&page=0", headers=owner.headers)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"tier", "page"}


async def test_another_organizations_license_is_404(api: Api, owner: Account, client: httpx.AsyncClient) -> None:
    created = await create_license(owner)
    stranger = await api.register("stranger@example.com")
    for response in (
        await client.get(f"/api/v1/licenses/{created['id']}/", headers=stranger.headers),
        await client.patch(f"/api/v1/licenses/{created['id']}/", json={"seats": 9}, headers=stranger.headers),
        await client.get(f"/api/v1/licenses/{created['id']}/sessions/", headers=stranger.headers),
        await client.get("/api/v1/licenses/not-a-uuid/", headers=stranger.headers),
    ):
        assert_licensing_error(response, 404, "Not found", response.json()["detail"])
    listed = (await client.get("/api/v1/licenses/", headers=stranger.headers)).json()
    assert listed["count"] == 0


async def test_create_rejects_bad_input(api: Api, owner: Account, client: httpx.AsyncClient) -> None:
    staff = await api.staff()
    org = owner.organization_id
    response = await client.post(
        "/api/v1/licenses/",
        json={"tier": "gold", "seats": 0, "expiry_date": "2001-01-01T00:00:00Z", "metadata": {"x": "y" * 20000}},
        headers=staff.headers,
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"tier", "seats", "metadata"}
    past = await client.post(
        "/api/v1/licenses/",
        json={"tier": "pro", "seats": 1, "expiry_date": "2001-01-01T00:00:00Z", "organization_id": org},
        headers=staff.headers,
    )
    assert_licensing_fields(past, {"expiry_date": ["Must be in the future."]})
    naive = await client.post(
        "/api/v1/licenses/",
        json={"tier": "pro", "seats": 1, "expiry_date": "2031-01-01T00:00:00", "organization_id": org},
        headers=staff.headers,
    )
    assert list(naive.json()["errors"]) == ["expiry_date"]


async def test_validate_says_why_in_a_code_and_a_reason(owner: Account, client: httpx.AsyncClient, sql) -> None:  # type: ignore[no-untyped-def]
    created = await create_license(owner, tier="enterprise")
    key = created["key_string"]

    async def check(key_string: str) -> dict[str, object]:
        response = await client.post("/api/v1/licenses/validate/", json={"key_string": key_string})
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    valid = await check(key)
    assert valid["valid"] is True and valid["code"] == "VALID"
    assert valid["license"] == {
        "key_string": key,
        "tier": "enterprise",
        "seats": 5,
        "is_active": True,
        "expiry_date": None,
        "livemode": True,
    }
    # Typed in lower case: still the same key.
    assert (await check(key.lower()))["valid"] is True

    typo = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert (await check(typo))["code"] == "MALFORMED"
    assert (await check("PROD-2025-ABCD-1234"))["code"] == "MALFORMED"
    assert (await check(""))["code"] == "MALFORMED"
    unknown = keys.generate("PROD", 2026)
    assert await check(unknown) == {
        "valid": False,
        "code": "NOT_FOUND",
        "reason": "No license has this key.",
        "license": None,
    }

    await client.patch(f"/api/v1/licenses/{created['id']}/", json={"suspended": True}, headers=owner.headers)
    assert await check(key) == {
        "valid": False,
        "code": "SUSPENDED",
        "reason": "This license is suspended.",
        "license": None,
    }
    await client.patch(f"/api/v1/licenses/{created['id']}/", json={"suspended": False}, headers=owner.headers)
    await sql("UPDATE licenses SET is_active = false WHERE id = :id", id=created["id"])  # its subscription ended
    assert (await check(key))["code"] == "INACTIVE"
    await sql("UPDATE licenses SET is_active = true WHERE id = :id", id=created["id"])
    await sql("UPDATE licenses SET expiry_date = now() - interval '1 day' WHERE id = :id", id=created["id"])
    expired = await check(key)
    assert expired["valid"] is False and expired["code"] == "EXPIRED"
    assert str(expired["reason"]).startswith("This license expired on ")


async def test_validate_refuses_a_malformed_body_with_400(client: httpx.AsyncClient) -> None:
    assert_licensing_fields(
        await client.post("/api/v1/licenses/validate/", json={}), {"key_string": ["This field is required."]}
    )
    long_key = await client.post("/api/v1/licenses/validate/", json={"key_string": "A" * 1000})
    assert list(long_key.json()["errors"]) == ["key_string"]
    broken = await client.post("/api/v1/licenses/validate/", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"] == "Malformed JSON"
