"""`X-Backplane-Mode`: a signed-in user acts in test mode as a test key would; a key keeps its own mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.assertions import assert_error, assert_invalid, assert_licensing_error

TEST = {"X-Backplane-Mode": "test"}
LIVE = {"X-Backplane-Mode": "live"}
BAD_MODE = "X-Backplane-Mode must be `live` or `test`."
BAD_MODE_DETAILS = {"header": "X-Backplane-Mode", "allowed": ["live", "test"]}
LIVE_REQUIRED = (
    "This action needs live mode: use a live API key (`coexai_live_…`) or a signed-in user without "
    "`X-Backplane-Mode: test`."
)


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def test_a_user_in_test_mode_creates_and_lists_test_licenses_only(api, client):
    owner = await api.register()  # the organization has its live free license
    created = await client.post(
        "/api/v1/licenses/", json={"tier": "pro", "seats": 2}, headers={**owner.headers, **TEST}
    )
    assert created.status_code == 201, created.text
    license_ = created.json()
    assert license_["livemode"] is False and license_["seats"] == 2 and license_["expiry_date"] is not None

    tested = await client.get("/api/v1/licenses/", headers={**owner.headers, **TEST})
    assert tested.status_code == 200, tested.text
    assert [row["id"] for row in tested.json()["licenses"]] == [license_["id"]]
    live = await client.get("/api/v1/licenses/", headers=owner.headers)
    assert live.json()["count"] == 1 and live.json()["licenses"][0]["livemode"] is True
    assert license_["id"] not in {row["id"] for row in live.json()["licenses"]}
    also_live = await client.get("/api/v1/licenses/", headers={**owner.headers, **LIVE})
    assert also_live.json() == live.json()
    # Reading it by id: in test mode only.
    assert (
        await client.get(f"/api/v1/licenses/{license_['id']}/", headers={**owner.headers, **TEST})
    ).status_code == 200
    assert_licensing_error(
        await client.get(f"/api/v1/licenses/{license_['id']}/", headers=owner.headers),
        404,
        "Not found",
        "License not found.",
    )
    # Its event is a test-mode event.
    events = await client.get("/v1/events", params={"type": "license.created"}, headers={**owner.headers, **TEST})
    assert [e["livemode"] for e in events.json()["data"]] == [False]


async def test_a_user_in_test_mode_is_held_to_the_test_limits(api, client):
    owner = await api.register()
    too_many = await client.post(
        "/api/v1/licenses/", json={"tier": "pro", "seats": 6}, headers={**owner.headers, **TEST}
    )
    assert too_many.status_code == 400, too_many.text
    assert too_many.json() == {"errors": {"seats": ["A test-mode license has at most 5 seats."]}}
    live = await client.post("/api/v1/licenses/", json={"tier": "pro", "seats": 2}, headers=owner.headers)
    assert live.status_code == 403 and live.json()["error"] == "Forbidden"


async def test_a_user_in_test_mode_is_refused_by_live_only_routes_and_creates_only_test_keys(api, client):
    owner = await api.register()
    assert_error(
        await client.get("/v1/subscriptions", headers={**owner.headers, **TEST}),
        403,
        "LIVE_MODE_REQUIRED",
        LIVE_REQUIRED,
    )
    assert_licensing_error(
        await client.get("/api/v1/subscriptions/current/", headers={**owner.headers, **TEST}),
        403,
        "Forbidden",
        LIVE_REQUIRED,
    )
    assert (await client.get("/v1/subscriptions", headers=owner.headers)).status_code == 200
    me = await client.get("/v1/users/me", headers={**owner.headers, **TEST})
    assert me.json()["auth"]["livemode"] is False and me.json()["auth"]["type"] == "jwt"
    assert_invalid(
        await client.post("/v1/api-keys", json={"name": "k", "mode": "live"}, headers={**owner.headers, **TEST}),
        {"mode": ["In test mode (a test-mode key, or X-Backplane-Mode: test) only test-mode keys can be created."]},
    )
    test_key = await client.post("/v1/api-keys", json={"name": "k", "mode": "test"}, headers={**owner.headers, **TEST})
    assert test_key.status_code == 201 and test_key.json()["mode"] == "test"


async def test_staff_in_test_mode_are_an_ordinary_test_caller(api, client):
    staff = await api.staff()
    other = await api.register()
    issued = await client.post(
        "/api/v1/licenses/",
        json={"tier": "pro", "seats": 2, "organization_id": other.organization_id},
        headers={**staff.headers, **TEST},
    )
    assert_licensing_error(issued, 403, "Forbidden", "Only platform staff may issue licenses to another organization.")
    own = await client.post("/api/v1/licenses/", json={"tier": "pro", "seats": 2}, headers={**staff.headers, **TEST})
    assert own.status_code == 201 and own.json()["livemode"] is False
    assert own.json()["organization"] == staff.organization_id


async def test_an_idempotency_key_replays_only_in_its_own_mode(api, client):
    owner = await api.register()
    first = await client.post(
        "/v1/api-keys", json={"name": "k", "mode": "test"}, headers={**owner.headers, **TEST, "Idempotency-Key": "same"}
    )
    again = await client.post(
        "/v1/api-keys", json={"name": "k", "mode": "test"}, headers={**owner.headers, **TEST, "Idempotency-Key": "same"}
    )
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    live = await client.post(
        "/v1/api-keys", json={"name": "k", "mode": "test"}, headers={**owner.headers, "Idempotency-Key": "same"}
    )
    assert live.status_code == 201 and "Idempotent-Replayed" not in live.headers
    assert live.json()["id"] != first.json()["id"]


async def test_a_key_may_name_its_own_mode_and_not_the_other(api, client):
    owner = await api.register()
    live_key = await owner.create_key(scopes=["read", "write", "admin"])
    test_key = await owner.create_key(mode="test", scopes=["read", "write", "admin"])
    assert (await client.get("/v1/users/me", headers={**bearer(live_key), **LIVE})).status_code == 200
    assert (await client.get("/v1/users/me", headers={**bearer(test_key), **TEST})).json()["auth"]["livemode"] is False
    assert_error(
        await client.get("/v1/users/me", headers={**bearer(live_key), **TEST}),
        400,
        "INVALID_MODE",
        "This is a live-mode API key; it cannot act in test mode (X-Backplane-Mode: test). Use a test-mode key, "
        "or drop the header.",
        {"header": "X-Backplane-Mode", "key_mode": "live"},
    )
    assert_licensing_error(
        await client.get("/api/v1/licenses/", headers={**bearer(test_key), **LIVE}),
        400,
        "Bad request",
        "This is a test-mode API key; it cannot act in live mode (X-Backplane-Mode: live). Use a live-mode key, "
        "or drop the header.",
    )


@pytest.mark.parametrize("value", ["", "TEST ", "Live", "sandbox", "test,live", "1", "x" * 5000, b"t\xe9st"])
async def test_any_other_mode_is_a_400_never_a_500(api, client, value):
    owner = await api.register()
    headers = {**owner.headers, "X-Backplane-Mode": value}
    if isinstance(value, str) and value.strip().lower() in ("live", "test"):  # case and spaces aside, a mode is a mode
        assert (await client.get("/v1/users/me", headers=headers)).status_code == 200
        return
    assert_error(await client.get("/v1/users/me", headers=headers), 400, "INVALID_MODE", BAD_MODE, BAD_MODE_DETAILS)
    assert_licensing_error(await client.get("/api/v1/licenses/", headers=headers), 400, "Bad request", BAD_MODE)


async def test_the_header_is_documented_on_every_authenticated_route(client):
    schema = (await client.get("/openapi.json")).json()
    authenticated = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not operation.get("security"):
                continue
            authenticated += 1
            names = {p["name"].lower(): p for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "x-backplane-mode" in names, (method, path)
            assert "`live` or `test`" in names["x-backplane-mode"]["description"]
            assert "400" in operation["responses"], (method, path)
    assert authenticated > 50
