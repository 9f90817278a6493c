"""Stripe mode for tests: an app pointed at the Stripe stand-in, an owner, signed deliveries, and the
purchase every Stripe test starts from. The fixtures are registered by this folder's conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.auth import Account, Api
from tests.fixtures.stripe_fixture import stand_in_settings
from tests.fixtures.stripe_server import StripeServer, event, signed_webhook

WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK = "/api/v1/webhooks/stripe/"
CHECKOUT = {
    "price_id": "price_pro_monthly",
    "seats": 5,
    "success_url": "https://app.example.com/success",
    "cancel_url": "https://app.example.com/pricing",
}


@pytest.fixture
async def stripe_app(settings: Settings, stripe_server: StripeServer) -> AsyncIterator[FastAPI]:
    stripe_settings = stand_in_settings(stripe_server, stripe_webhook_secret=WEBHOOK_SECRET)
    application = create_app(settings.model_copy(update={"stripe": stripe_settings}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(stripe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stripe_app), base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def owner(http: httpx.AsyncClient) -> Account:
    return await Api(http).register("owner@example.com", company="Acme")


async def deliver(http: httpx.AsyncClient, evt: dict[str, Any], **kwargs: Any) -> httpx.Response:
    body, headers = signed_webhook(evt, WEBHOOK_SECRET, **kwargs)
    return await http.post(WEBHOOK, content=body, headers=headers)


async def bought(http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer) -> dict[str, Any]:
    """Checkout through the API, the customer pays at the stand-in, Stripe sends the webhook."""
    response = await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    assert response.status_code == 200, response.text
    session_obj, subscription = stripe_server.complete_checkout(response.json()["session_id"])
    delivered = await deliver(http, event("checkout.session.completed", session_obj))
    assert delivered.status_code == 200, delivered.text
    return subscription


async def current_subscription(http: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/api/v1/subscriptions/current/", headers=owner.headers)).json()
    return body


async def event_types(settings: Settings, organization_id: str) -> list[str]:
    """The organization's subscription and payment events, oldest first (the license events a purchase
    also makes are tested in tests/billing/test_local_billing.py and tests/webhooks/test_event_types.py)."""
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT type FROM events WHERE organization_id = :o AND type NOT LIKE 'license.%' "
                    "ORDER BY created_at"
                ),
                {"o": organization_id},
            )
            return [r[0] for r in rows]
    finally:
        await engine.dispose()


@asynccontextmanager
async def stripe_app_for(
    settings: Settings, stripe_server: StripeServer, **stripe_overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Api]]:
    """A client of an app in Stripe mode with other Stripe settings (STRIPE_PORTAL_RETURN_URL, ...), and an
    `Api` that can follow the app's mailed links."""
    stripe_settings = stand_in_settings(stripe_server, stripe_webhook_secret=WEBHOOK_SECRET, **stripe_overrides)
    application = create_app(settings.model_copy(update={"stripe": stripe_settings}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as client,
    ):
        yield client, Api(client, application.state.queue)
