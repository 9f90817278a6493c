"""Stripe mode: the real stripe library against the loopback stand-in, webhooks signed as Stripe does."""

from __future__ import annotations

import asyncio
import time

import httpx

from backplane.app import create_app
from backplane.core.config import Settings
from tests.billing.stripe_mode import (
    CHECKOUT,
    WEBHOOK,
    WEBHOOK_SECRET,
    bought,
    current_subscription,
    deliver,
    event_types,
)
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account, Api
from tests.fixtures.stripe_fixture import stand_in_settings
from tests.fixtures.stripe_server import StripeServer, event, sign_webhook, signed_webhook


async def test_checkout_then_webhook_creates_subscription_and_license(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    response = await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    body = response.json()
    assert body["session_id"].startswith("cs_") and body["checkout_url"].startswith("https://checkout.stripe.test/")
    [created] = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert created.params["line_items"] == [{"price": "price_pro_monthly", "quantity": "5"}]
    assert created.params["metadata"]["organization_id"] == owner.organization_id
    # Not live until the payment completes.
    assert (await current_subscription(http, owner))["plan"] == "free"

    session_obj, _ = stripe_server.complete_checkout(body["session_id"])
    delivered = await deliver(http, event("checkout.session.completed", session_obj))
    assert delivered.json() == {"received": True, "duplicate": False}
    current = await current_subscription(http, owner)
    assert (current["plan"], current["status"], current["seats"]) == ("pro", "active", 5)
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert (license_["tier"], license_["seats"], license_["is_active"]) == ("pro", 5, True)
    assert await event_types(settings, owner.organization_id) == ["subscription.created"]

    # A second checkout reuses the organization's one Stripe customer.
    await http.post("/api/v1/subscriptions/cancel/", json={"immediately": True}, headers=owner.headers)
    await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    assert len(stripe_server.requests_to("POST", "/v1/customers")) == 1


async def test_seat_update_changes_stripe_quantity_and_the_license(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    subscription = await bought(http, owner, stripe_server)
    updated = await http.post("/api/v1/subscriptions/update/", json={"seats": 12}, headers=owner.headers)
    assert updated.status_code == 200 and updated.json()["seats"] == 12
    assert stripe_server.get(subscription["id"])["items"]["data"][0]["quantity"] == 12
    license_ = (await http.get(f"/api/v1/licenses/{updated.json()['license_id']}/", headers=owner.headers)).json()
    assert license_["seats"] == 12


async def test_cancel_at_period_end_then_immediately(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    at_end = await http.post("/api/v1/subscriptions/cancel/", json={}, headers=owner.headers)
    assert at_end.json()["cancel_at_period_end"] is True and at_end.json()["status"] == "active"
    assert stripe_server.get(subscription["id"])["cancel_at_period_end"] is True

    now = await http.post("/api/v1/subscriptions/cancel/", json={"immediately": True}, headers=owner.headers)
    assert now.json()["status"] == "canceled"
    assert stripe_server.get(subscription["id"])["status"] == "canceled"
    license_ = (await http.get(f"/api/v1/licenses/{now.json()['license_id']}/", headers=owner.headers)).json()
    assert license_["is_active"] is False
    # Stripe's own deletion event afterwards changes nothing more.
    deleted = await deliver(http, event("customer.subscription.deleted", stripe_server.get(subscription["id"])))
    assert deleted.status_code == 200
    assert await event_types(settings, owner.organization_id) == [
        "subscription.created",
        "subscription.updated",
        "subscription.cancelled",
    ]


async def test_a_duplicate_event_has_no_second_effect(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    changed = stripe_server.set_subscription(subscription["id"], status="past_due")
    evt = event("invoice.payment_failed", {**stripe_server.create_invoice(subscription["id"], status="open")})
    first = await deliver(http, evt)
    second = await deliver(http, evt)
    assert first.json() == {"received": True, "duplicate": False}
    assert second.json() == {"received": True, "duplicate": True}
    assert changed["status"] == "past_due"
    assert (await current_subscription(http, owner))["status"] == "past_due"
    assert (await event_types(settings, owner.organization_id)).count("payment.failed") == 1


async def test_two_concurrent_deliveries_of_one_event_apply_once(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    evt = event("customer.subscription.updated", stripe_server.set_subscription(subscription["id"], quantity=9))
    responses = await asyncio.gather(*(deliver(http, evt) for _ in range(2)))
    assert sorted(r.json()["duplicate"] for r in responses) == [False, True]
    assert (await current_subscription(http, owner))["seats"] == 9
    assert (await event_types(settings, owner.organization_id)).count("subscription.updated") == 1


async def test_events_delivered_in_reverse_end_in_stripes_state(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    subscription = await bought(http, owner, stripe_server)
    now = int(time.time())
    older = event("customer.subscription.updated", stripe_server.set_subscription(subscription["id"], quantity=8))
    newer = event("customer.subscription.updated", stripe_server.set_subscription(subscription["id"], quantity=20))
    # The newer first, then the older one, whose copy of the subscription says 8 seats.
    assert (await deliver(http, {**newer, "created": now})).status_code == 200
    assert (await deliver(http, {**older, "created": now - 5})).status_code == 200
    current = await current_subscription(http, owner)
    assert current["seats"] == 20
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert license_["seats"] == 20


async def test_an_event_whose_copy_is_newer_than_stripe_still_ends_in_stripes_state(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    """An event is a hint to look, never the state: a copy that Stripe has since moved on from is not applied."""
    subscription = await bought(http, owner, stripe_server)
    copy = stripe_server.set_subscription(subscription["id"], status="past_due")
    stripe_server.set_subscription(subscription["id"], status="active")
    assert (await deliver(http, event("customer.subscription.updated", copy))).status_code == 200
    assert (await current_subscription(http, owner))["status"] == "active"


async def test_payment_succeeded_restores_a_past_due_subscription(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    stripe_server.set_subscription(subscription["id"], status="past_due")
    await deliver(
        http, event("invoice.payment_failed", stripe_server.create_invoice(subscription["id"], status="open"))
    )
    assert (await current_subscription(http, owner))["status"] == "past_due"
    stripe_server.set_subscription(subscription["id"], status="active")
    await deliver(http, event("invoice.payment_succeeded", stripe_server.create_invoice(subscription["id"])))
    assert (await current_subscription(http, owner))["status"] == "active"
    types = await event_types(settings, owner.organization_id)
    assert "payment.failed" in types and types[-1] == "payment.succeeded"


async def test_past_due_keeps_the_plan_for_the_grace_period_only(
    settings: Settings, stripe_server: StripeServer
) -> None:
    stripe_settings = stand_in_settings(stripe_server, stripe_webhook_secret=WEBHOOK_SECRET, past_due_grace_seconds=0)
    application = create_app(settings.model_copy(update={"stripe": stripe_settings}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        owner = await Api(http).register("late@example.com")
        subscription = await bought(http, owner, stripe_server)
        stripe_server.set_subscription(subscription["id"], status="past_due")
        invoice = stripe_server.create_invoice(subscription["id"], status="open")
        await deliver(http, event("invoice.payment_failed", invoice, created=int(time.time())))
        await asyncio.sleep(0.01)
        current = await current_subscription(http, owner)
    assert current["plan"] == "pro" and current["status"] == "past_due"
    assert current["limits"]["requests_per_minute"] == 60  # grace of 0 s is over: free limits


async def test_bad_signatures_and_stale_timestamps_change_nothing(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    subscription = await bought(http, owner, stripe_server)
    obj = stripe_server.get(subscription["id"])
    evt = event("customer.subscription.deleted", obj)
    body, headers = signed_webhook(evt, "whsec_wrong")
    forged = await http.post(WEBHOOK, content=body, headers=headers)
    assert forged.status_code == 400
    assert forged.json()["error"] == "Invalid webhook"
    assert forged.json()["detail"].startswith("Signature verification failed")
    stale = await deliver(http, evt, timestamp=int(time.time()) - 301)
    assert stale.status_code == 400
    missing = await http.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    assert_licensing_error(missing, 400, "Invalid webhook", "The Stripe-Signature header is missing.")
    tampered = body.replace(b'"active"', b'"canceled"')
    changed = await http.post(
        WEBHOOK, content=tampered, headers=headers | {"Stripe-Signature": sign_webhook(body, WEBHOOK_SECRET)}
    )
    assert changed.status_code == 400
    assert (await current_subscription(http, owner))["status"] == "active"
    # The forged event's id was not consumed: the genuine delivery still applies (Stripe's state).
    stripe_server.set_subscription(subscription["id"], status="canceled")
    genuine = await deliver(http, evt)
    assert genuine.json() == {"received": True, "duplicate": False}
    assert (await current_subscription(http, owner))["status"] == "canceled"


async def test_unknown_event_types_are_acknowledged_and_ignored(http: httpx.AsyncClient, owner: Account) -> None:
    response = await deliver(http, event("customer.tax_id.created", {"object": "tax_id", "id": "txi_1"}))
    assert response.json() == {"received": True, "duplicate": False}
    garbage = b"not json"
    rejected = await http.post(
        WEBHOOK, content=garbage, headers={"Stripe-Signature": sign_webhook(garbage, WEBHOOK_SECRET)}
    )
    assert_licensing_error(rejected, 400, "Invalid webhook", "The payload is not a Stripe event.")


async def test_stripe_outage_during_checkout_is_a_clean_502(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    stripe_server.fail_next(10, status=500)
    response = await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
    assert_licensing_error(
        response, 502, "Billing unavailable", "The payment provider could not be reached. Retry later."
    )


async def test_cancel_at_period_end_then_deleted_in_the_same_second_ends_the_subscription(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, settings: Settings
) -> None:
    """The cancel call must not stamp a local time that makes Stripe's own deletion look older."""
    subscription = await bought(http, owner, stripe_server)
    second = int(time.time())
    at_end = await http.post("/api/v1/subscriptions/cancel/", json={}, headers=owner.headers)
    assert at_end.status_code == 200 and at_end.json()["cancel_at_period_end"] is True
    ended = stripe_server.set_subscription(subscription["id"], status="canceled", ended_at=second)
    deleted = await deliver(http, event("customer.subscription.deleted", ended, created=second))
    assert deleted.json() == {"received": True, "duplicate": False}
    current = await current_subscription(http, owner)
    assert current["status"] == "canceled"
    license_ = (await http.get(f"/api/v1/licenses/{current['license_id']}/", headers=owner.headers)).json()
    assert license_["is_active"] is False
    validated = await http.post("/api/v1/licenses/validate/", json={"key_string": license_["key_string"]})
    assert validated.json()["valid"] is False  # the customer stopped paying: the license stops validating
    assert (await event_types(settings, owner.organization_id))[-1] == "subscription.cancelled"
