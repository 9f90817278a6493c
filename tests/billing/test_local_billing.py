"""Local billing mode (no STRIPE_SECRET_KEY): every flow works end to end without Stripe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.assertions import assert_licensing_error, assert_licensing_fields
from tests.fixtures.auth import Account, Api

CHECKOUT = {
    "price_id": "price_pro_monthly",
    "seats": 5,
    "success_url": "https://app.coditect.ai/success",
    "cancel_url": "https://app.coditect.ai/pricing",
}


async def _events(settings: Settings, organization_id: str) -> list[tuple[str, dict[str, Any]]]:
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT type, data FROM events WHERE organization_id = :o ORDER BY created_at"),
                {"o": organization_id},
            )
            return [(r[0], r[1]) for r in rows]
    finally:
        await engine.dispose()


async def _buy(client: httpx.AsyncClient, owner: Account, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/subscriptions/checkout/", json={**CHECKOUT, **overrides}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    completed = await client.post(body["checkout_url"].replace("http://testserver", ""), headers=owner.headers)
    assert completed.status_code == 303
    assert completed.headers["location"] == CHECKOUT["success_url"]
    return body


async def test_plans_are_public_with_prices_and_limits(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/subscriptions/plans/")
    assert response.status_code == 200
    plans = {p["id"]: p for p in response.json()["plans"]}
    assert set(plans) == {"free", "pro", "enterprise"}
    assert plans["pro"]["price_id"] == "price_pro_monthly"
    assert plans["free"]["price_id"] is None
    assert plans["pro"]["limits"] == {
        "requests_per_minute": 600,
        "burst": 100,
        "concurrent_jobs": 5,
        "jobs_per_month": 10_000,
        "max_upload_bytes": 100 * 1024 * 1024,
    }
    assert plans["enterprise"]["limits"]["jobs_per_month"] is None
    assert (await client.get("/v1/subscriptions/plans")).json() == response.json()


async def test_without_a_subscription_the_organization_is_on_free(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("free@example.com")
    current = (await client.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    assert current["plan"] == "free" and current["id"] is None and current["limits"]["requests_per_minute"] == 60


async def test_local_checkout_creates_the_subscription_and_its_license(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await api.register("buyer@example.com")
    body = await _buy(client, owner)
    assert body["session_id"].startswith("cs_local_")

    current = (await client.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    assert {k: current[k] for k in ("plan", "status", "seats", "cancel_at_period_end")} == {
        "plan": "pro",
        "status": "active",
        "seats": 5,
        "cancel_at_period_end": False,
    }
    assert current["limits"]["requests_per_minute"] == 600
    license_ = (await client.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert (license_["tier"], license_["seats"], license_["is_active"]) == ("pro", 5, True)
    platform = (await client.get("/v1/subscriptions", headers=owner.headers)).json()
    assert platform["id"] == current["id"]

    # The URL works once.
    again = await client.post(body["checkout_url"].replace("http://testserver", ""), headers=owner.headers)
    assert again.status_code == 404
    assert [t for t, _ in await _events(settings, owner.organization_id)] == ["license.created", "subscription.created"]


async def test_seats_and_cancellation_follow_to_the_license(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await api.register("changer@example.com")
    await _buy(client, owner)
    updated = await client.post("/api/v1/subscriptions/update/", json={"seats": 10}, headers=owner.headers)
    assert updated.status_code == 200 and updated.json()["seats"] == 10
    license_id = updated.json()["license_id"]
    assert (await client.get(f"/api/v1/licenses/{license_id}/", headers=owner.headers)).json()["seats"] == 10

    at_end = await client.post("/api/v1/subscriptions/cancel/", json={"immediately": False}, headers=owner.headers)
    assert at_end.json()["status"] == "active" and at_end.json()["cancel_at_period_end"] is True
    assert (await client.get(f"/api/v1/licenses/{license_id}/", headers=owner.headers)).json()["is_active"] is True

    now = await client.post("/api/v1/subscriptions/cancel/", json={"immediately": True}, headers=owner.headers)
    assert now.json()["status"] == "canceled" and now.json()["limits"]["requests_per_minute"] == 60
    assert (await client.get(f"/api/v1/licenses/{license_id}/", headers=owner.headers)).json()["is_active"] is False
    types = [t for t, _ in await _events(settings, owner.organization_id)]
    assert types == [
        "license.created",
        "subscription.created",
        "license.updated",  # seats 10
        "subscription.updated",
        "subscription.updated",  # cancel at period end: the license is unchanged, so no license event
        "license.updated",  # no longer active
        "subscription.cancelled",
    ]

    no_sub = await client.post("/api/v1/subscriptions/update/", json={"seats": 3}, headers=owner.headers)
    assert_licensing_error(
        no_sub, 409, "Conflict", "This organization has no active subscription. Start one with checkout/."
    )


async def test_only_owners_buy(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("boss@example.com")
    member = await api.register("staff@example.com")
    await api.add_member(owner, member, "member")
    response = await client.post(
        "/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=member.in_org(owner.organization_id)
    )
    assert_licensing_error(
        response, 403, "Forbidden", "Your role 'member' does not allow this action; it requires 'owner'."
    )
    key = await owner.create_key(scopes=["read", "write"])
    keyed = await client.post(
        "/api/v1/subscriptions/checkout/", json=CHECKOUT, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert_licensing_error(
        keyed,
        403,
        "Forbidden",
        "This action needs the organization's owner: a key with the 'admin' scope created by a current owner.",
    )


async def test_checkout_bad_input(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("sloppy@example.com")
    unknown = await client.post(
        "/api/v1/subscriptions/checkout/", json={**CHECKOUT, "price_id": "price_gold"}, headers=owner.headers
    )
    assert_licensing_fields(
        unknown, {"price_id": ["Unknown price. Use a price_id from GET /api/v1/subscriptions/plans/."]}
    )
    bad = await client.post(
        "/api/v1/subscriptions/checkout/",
        json={**CHECKOUT, "seats": 0, "success_url": "not a url"},
        headers=owner.headers,
    )
    assert set(bad.json()["errors"]) == {"seats", "success_url"}
    await _buy(client, owner)
    twice = await client.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    assert twice.status_code == 409
    forged = "/api/v1/subscriptions/local-checkout/cs_local_" + "0" * 32 + "/"
    for answer in (await client.get(forged), await client.post(forged, headers=owner.headers)):
        assert_licensing_error(answer, 404, "Not found", GONE)
    assert (await client.get("/api/v1/subscriptions/local-checkout/../../etc/")).status_code == 404


GONE = "This checkout session does not exist, has expired or was already completed."


async def test_the_checkout_url_alone_completes_nothing(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("opener@example.com")
    started = await client.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    path = started.json()["checkout_url"].replace("http://testserver", "")

    page = await client.get(path)  # a confirmation page, nothing more
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert "Pro" in page.text and "5 seats" in page.text and f"curl -X POST http://testserver{path}" in page.text
    assert (await client.get(path)).status_code == 200  # opening it again changes nothing either
    current = (await client.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    assert current["plan"] == "free" and current["license_id"] is None

    anonymous = await client.post(path)
    assert anonymous.status_code == 401

    stranger = await api.register("stranger@example.com")
    assert_licensing_error(await client.post(path, headers=stranger.headers), 404, "Not found", GONE)

    colleague = await api.register("colleague@example.com")
    await api.add_member(owner, colleague, "owner")
    assert_licensing_error(
        await client.post(path, headers=colleague.in_org(owner.organization_id)),
        403,
        "Forbidden",
        "Only the account that started this checkout can complete it.",
    )
    key = await owner.create_key(scopes=["read", "write", "admin"])
    assert_licensing_error(
        await client.post(path, headers={"Authorization": f"Bearer {key['key']}"}),
        403,
        "Forbidden",
        "Only the account that started this checkout can complete it.",
    )

    completed = await client.post(path, headers=owner.headers)
    assert completed.status_code == 303 and completed.headers["location"] == CHECKOUT["success_url"]
    current = (await client.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    assert current["plan"] == "pro"
    assert_licensing_error(await client.get(path), 404, "Not found", GONE)


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(settings.model_copy(update={"rate_limits_enabled": True}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        yield http


async def test_the_plan_drives_the_platform_rate_tier(
    api: Api, client: httpx.AsyncClient, limited: httpx.AsyncClient
) -> None:
    owner = await api.register("tiered@example.com")
    before = await limited.get("/v1/users/me", headers=owner.headers)
    assert before.headers["X-RateLimit-Limit"] == "60"
    await _buy(client, owner)
    after = await limited.get("/v1/users/me", headers=owner.headers)
    assert after.headers["X-RateLimit-Limit"] == "600"
    assert after.headers["RateLimit-Policy"] == '"pro";q=600;w=60'


async def test_fewer_seats_than_live_sessions_keeps_them_but_refuses_new_ones(
    api: Api, client: httpx.AsyncClient
) -> None:
    owner = await api.register("shrink@example.com")
    await _buy(client, owner, seats=3)
    current = (await client.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    key = (await client.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()["key_string"]
    sessions = []
    for machine in ("a", "b", "c"):
        acquired = await client.post(
            "/api/v1/licenses/acquire/", json={"license_key": key, "hardware_id": machine}, headers=owner.headers
        )
        sessions.append(acquired.json()["session_id"])

    assert (
        await client.post("/api/v1/subscriptions/update/", json={"seats": 1}, headers=owner.headers)
    ).status_code == 200
    for session_id in sessions:  # running sessions live on
        beat = await client.patch(f"/api/v1/licenses/sessions/{session_id}/heartbeat/", headers=owner.headers)
        assert beat.status_code == 200 and beat.json()["seats_remaining"] == 0

    async def acquire_new() -> int:
        response = await client.post(
            "/api/v1/licenses/acquire/", json={"license_key": key, "hardware_id": "d"}, headers=owner.headers
        )
        return response.status_code

    assert await acquire_new() == 409
    await client.delete(f"/api/v1/licenses/sessions/{sessions[0]}/", headers=owner.headers)
    assert await acquire_new() == 409  # 2 live on 1 seat
    await client.delete(f"/api/v1/licenses/sessions/{sessions[1]}/", headers=owner.headers)
    assert await acquire_new() == 409  # 1 live on 1 seat: full
    await client.delete(f"/api/v1/licenses/sessions/{sessions[2]}/", headers=owner.headers)
    assert await acquire_new() == 200
