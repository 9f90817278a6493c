"""Stripe is the source of truth whatever the order: events reversed, duplicated, concurrent, or
interleaved with API calls in the same second all end in Stripe's state; Stripe down changes nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import stripe

from backplane.core.config import Settings
from tests.billing.stripe_mode import bought, current_subscription, deliver, event_types, stripe_app_for
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account
from tests.fixtures.net import refused_port
from tests.fixtures.stripe_server import StripeServer, event

UNAVAILABLE = "The payment provider could not be reached. Retry later."


async def test_api_calls_and_webhooks_interleaved_in_one_second_end_in_stripes_state(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    second = int(time.time())
    stale_copy = stripe_server.get(subscription["id"])  # what Stripe sent before the calls below
    results = await asyncio.gather(
        http.post("/api/v1/subscriptions/update/", json={"seats": 7}, headers=owner.headers),
        deliver(http, event("customer.subscription.updated", stale_copy, created=second)),
        http.post("/api/v1/subscriptions/cancel/", json={}, headers=owner.headers),
        deliver(http, event("customer.subscription.updated", stale_copy, created=second)),
    )
    assert [r.status_code for r in results] == [200, 200, 200, 200]
    # Each API call's own webhook arrives afterwards, in the same second, carrying the state it made.
    for copy in (stripe_server.get(subscription["id"]), stale_copy):
        await deliver(http, event("customer.subscription.updated", copy, created=second))
    remote = stripe_server.get(subscription["id"])
    current = await current_subscription(http, owner)
    assert (
        (current["seats"], current["cancel_at_period_end"], current["status"])
        == (
            remote["items"]["data"][0]["quantity"],
            remote["cancel_at_period_end"],
            remote["status"],
        )
        == (7, True, "active")
    )
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert (license_["seats"], license_["is_active"]) == (7, True)
    assert (await event_types(settings, owner.organization_id)).count("subscription.cancelled") == 0


async def test_concurrent_events_about_one_subscription_are_applied_one_at_a_time(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    copies = [stripe_server.set_subscription(subscription["id"], quantity=n) for n in (2, 3, 4, 5, 6)]
    responses = await asyncio.gather(
        *(deliver(http, event("customer.subscription.updated", copy)) for copy in reversed(copies))
    )
    assert all(r.json() == {"received": True, "duplicate": False} for r in responses)
    assert (await current_subscription(http, owner))["seats"] == 6
    # Each applied what it fetched, in turn: the seat count moved at most once per delivery, never back.
    types = await event_types(settings, owner.organization_id)
    assert 1 <= types.count("subscription.updated") <= 5


async def test_a_duplicated_deletion_is_one_cancellation(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    ended = stripe_server.set_subscription(subscription["id"], status="canceled", ended_at=int(time.time()))
    deletion = event("customer.subscription.deleted", ended)
    again = event("customer.subscription.deleted", ended)  # Stripe's retry is the same id; a resend is not
    for delivered in await asyncio.gather(deliver(http, deletion), deliver(http, deletion), deliver(http, again)):
        assert delivered.status_code == 200
    assert (await current_subscription(http, owner))["status"] == "canceled"
    assert (await event_types(settings, owner.organization_id)).count("subscription.cancelled") == 1


async def test_a_late_event_about_an_ended_subscription_leaves_its_successor_alone(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    first = await bought(http, owner, stripe_server)
    await http.post("/api/v1/subscriptions/cancel/", json={"immediately": True}, headers=owner.headers)
    second = await bought(http, owner, stripe_server)
    assert second["id"] != first["id"]
    late = await deliver(http, event("customer.subscription.deleted", stripe_server.get(first["id"])))
    assert late.status_code == 200
    current = await current_subscription(http, owner)
    assert (current["status"], current["seats"]) == ("active", 5)


async def test_stripe_down_during_a_webhook_is_a_502_that_changes_nothing_and_is_delivered_again(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    before = await event_types(settings, owner.organization_id)
    ended = stripe_server.set_subscription(subscription["id"], status="canceled")
    deletion = event("customer.subscription.deleted", ended)
    stripe_server.down()
    refused = await deliver(http, deletion)
    assert_licensing_error(refused, 502, "Billing unavailable", UNAVAILABLE)
    assert (await current_subscription(http, owner))["status"] == "active"
    assert await event_types(settings, owner.organization_id) == before
    # Stripe retries the delivery once it is back: the event id was not used up by the failed try.
    stripe_server.down(None)
    retried = await deliver(http, deletion)
    assert retried.json() == {"received": True, "duplicate": False}
    assert (await current_subscription(http, owner))["status"] == "canceled"


async def test_stripe_down_during_api_calls_is_a_502_that_changes_nothing(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    await bought(http, owner, stripe_server)
    before = await current_subscription(http, owner)
    types = await event_types(settings, owner.organization_id)
    stripe_server.down()
    for path, body in (("update/", {"seats": 9}), ("cancel/", {}), ("cancel/", {"immediately": True})):
        response = await http.post(f"/api/v1/subscriptions/{path}", json=body, headers=owner.headers)
        assert_licensing_error(response, 502, "Billing unavailable", UNAVAILABLE)
    stripe_server.down(None)
    assert await current_subscription(http, owner) == before
    assert await event_types(settings, owner.organization_id) == types


async def test_an_event_for_an_organization_that_is_gone_is_acknowledged_and_ignored(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, stripe_client: stripe.StripeClient
) -> None:
    gone = str(uuid.uuid4())
    customer = await stripe_client.v1.customers.create_async(params={"metadata": {"organization_id": gone}})
    checkout = await stripe_client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_pro_monthly", "quantity": 2}],
            "success_url": "https://app.example.com/s",
            "client_reference_id": gone,
            "metadata": {"organization_id": gone},
            "subscription_data": {"metadata": {"organization_id": gone}},
        }
    )
    session_obj, subscription = stripe_server.complete_checkout(checkout.id)
    for evt in (event("checkout.session.completed", session_obj), event("customer.subscription.updated", subscription)):
        assert (await deliver(http, evt)).json() == {"received": True, "duplicate": False}
    assert (await current_subscription(http, owner))["plan"] == "free"


async def test_stripe_refusing_connections_is_a_502_for_webhooks_and_api_calls_alike(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    before = await current_subscription(http, owner)
    ended = stripe_server.set_subscription(subscription["id"], status="canceled")
    with refused_port() as port:
        async with stripe_app_for(settings, stripe_server, stripe_api_base=f"http://127.0.0.1:{port}") as (cut_off, _):
            refused = await deliver(cut_off, event("customer.subscription.deleted", ended))
            assert_licensing_error(refused, 502, "Billing unavailable", UNAVAILABLE)
            cancel = await cut_off.post("/api/v1/subscriptions/cancel/", json={}, headers=owner.headers)
            assert_licensing_error(cancel, 502, "Billing unavailable", UNAVAILABLE)
            portal = await cut_off.post("/v1/billing/portal", headers=owner.headers)
            assert portal.status_code == 502 and portal.json()["error"]["code"] == "BILLING_UNAVAILABLE"
    assert await current_subscription(http, owner) == before
