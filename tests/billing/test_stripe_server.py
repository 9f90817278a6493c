"""The Stripe stand-in, driven by the real `stripe` library through the app's `create_stripe_client`."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import stripe

from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
from tests.fixtures.stripe_fixture import stand_in_settings
from tests.fixtures.stripe_server import (
    API_VERSION,
    StripeServer,
    decode_form,
    event,
    sign_webhook,
    signed_webhook,
)

WEBHOOK_SECRET = "whsec_test_secret"


async def _checkout(client: stripe.StripeClient, **extra: object) -> stripe.checkout.Session:
    params: dict[str, object] = {
        "mode": "subscription",
        "line_items": [{"price": "price_pro_monthly", "quantity": 3}],
        "success_url": "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/billing/cancel",
        "client_reference_id": "org_1",
        "metadata": {"organization_id": "org_1", "plan": "pro"},
        **extra,
    }
    return await client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]


async def _subscription(client: stripe.StripeClient, server: StripeServer, **extra: object) -> stripe.Subscription:
    session = await _checkout(client, **extra)
    _, subscription = server.complete_checkout(session.id)
    return await client.v1.subscriptions.retrieve_async(subscription["id"])


# --- form decoding ------------------------------------------------------------------------------


def test_decode_form_builds_nested_dicts_and_lists() -> None:
    pairs = [
        ("mode", "subscription"),
        ("line_items[0][price]", "price_a"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_b"),
        ("metadata[organization_id]", "org_1"),
        ("metadata[0]", "digit keys stay a map"),
        ("subscription_data[metadata][plan]", "pro"),
        ("expand[]", "subscription"),
        ("expand[]", "customer"),
        ("description", ""),
    ]
    assert decode_form(pairs) == {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"organization_id": "org_1", "0": "digit keys stay a map"},
        "subscription_data": {"metadata": {"plan": "pro"}},
        "expand": ["subscription", "customer"],
        "description": "",
    }


def test_decode_form_orders_list_items_by_index() -> None:
    assert decode_form([("items[10][id]", "b"), ("items[2][id]", "a")]) == {"items": [{"id": "a"}, {"id": "b"}]}


# --- lifecycle and HTTP shape -------------------------------------------------------------------


def test_a_second_server_starts_and_stops_cleanly() -> None:
    server = StripeServer()
    server.start()
    try:
        with httpx.Client() as http:
            response = http.get(f"{server.url}/v1/customers/cus_nope", headers={"Authorization": "Bearer sk_x"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v1/customers/cus_nope", timeout=2)


async def test_missing_or_bad_api_key_is_401_in_stripes_error_shape(stripe_server: StripeServer) -> None:
    async with httpx.AsyncClient(base_url=stripe_server.url) as http:
        missing = await http.post("/v1/customers", data={"email": "a@example.com"})
        wrong = await http.post(
            "/v1/customers", data={"email": "a@example.com"}, headers={"Authorization": "Bearer pk_test_abc"}
        )
    for response in (missing, wrong):
        assert response.status_code == 401
        body = response.json()
        assert set(body) == {"error"}
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"]
    assert "did not provide an API key" in missing.json()["error"]["message"]
    assert wrong.json()["error"]["message"] == "Invalid API Key provided: pk_test_abc"
    assert stripe_server.objects("customer") == []


async def test_the_library_raises_authentication_error_for_a_bad_key(stripe_server: StripeServer) -> None:
    client = create_stripe_client(stand_in_settings(stripe_server, stripe_secret_key="pk_test_not_secret"))
    assert client is not None
    try:
        with pytest.raises(stripe.AuthenticationError):
            await client.v1.customers.create_async(params={"email": "a@example.com"})
    finally:
        await close_stripe_client(client)


async def test_unknown_url_is_404(stripe_server: StripeServer) -> None:
    async with httpx.AsyncClient(base_url=stripe_server.url) as http:
        response = await http.get("/v1/nothing_here", headers={"Authorization": "Bearer sk_test_123"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Unrecognized request URL (GET: /v1/nothing_here)" in response.json()["error"]["message"]


# --- customers ----------------------------------------------------------------------------------


async def test_customers_are_created_and_retrieved(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    created = await stripe_client.v1.customers.create_async(
        params={"email": "owner@example.com", "name": "Acme Inc", "metadata": {"organization_id": "org_1"}}
    )
    assert created.id.startswith("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert isinstance(created.created, int)
    assert (created.email, created.name, created.metadata.to_dict()) == (
        "owner@example.com",
        "Acme Inc",
        {"organization_id": "org_1"},
    )

    fetched = await stripe_client.v1.customers.retrieve_async(created.id)
    assert fetched.to_dict() == created.to_dict()

    (request,) = stripe_server.requests_to("POST", "/v1/customers")
    assert ("metadata[organization_id]", "org_1") in request.form
    assert request.params["metadata"] == {"organization_id": "org_1"}
    assert request.headers["authorization"] == "Bearer sk_test_123"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.idempotency_key  # the library sends one on every POST


async def test_an_unknown_customer_is_resource_missing(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await stripe_client.v1.customers.retrieve_async("cus_missing")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.user_message == "No such customer: 'cus_missing'"


# --- checkout -----------------------------------------------------------------------------------


async def test_checkout_session_keeps_line_items_and_metadata(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    customer = await stripe_client.v1.customers.create_async(params={"email": "owner@example.com"})
    session = await _checkout(stripe_client, customer=customer.id)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"https://checkout.stripe.test/c/pay/{session.id}"
    assert (session.mode, session.status, session.payment_status) == ("subscription", "open", "unpaid")
    assert session.customer == customer.id
    assert session.client_reference_id == "org_1"
    assert session.metadata.to_dict() == {"organization_id": "org_1", "plan": "pro"}
    assert session.subscription is None
    assert session.success_url == "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
    assert session.cancel_url == "https://app.example.com/billing/cancel"
    assert session.amount_total == 3 * 4900

    (request,) = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert ("line_items[0][price]", "price_pro_monthly") in request.form
    assert ("line_items[0][quantity]", "3") in request.form
    assert request.params["line_items"] == [{"price": "price_pro_monthly", "quantity": "3"}]

    (item,) = stripe_server.line_items(session.id)
    assert (item["price"]["id"], item["quantity"]) == ("price_pro_monthly", 3)
    listed = await stripe_client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [(i.price.id, i.quantity) for i in listed.data] == [("price_pro_monthly", 3)]


async def test_checkout_refuses_bad_requests(stripe_client: stripe.StripeClient, stripe_server: StripeServer) -> None:
    with pytest.raises(stripe.InvalidRequestError) as no_items:
        await stripe_client.v1.checkout.sessions.create_async(
            params={"mode": "subscription", "success_url": "https://a.example/s"}
        )
    assert (no_items.value.code, no_items.value.param) == ("parameter_missing", "line_items")

    with pytest.raises(stripe.InvalidRequestError) as bad_customer:
        await _checkout(stripe_client, customer="cus_missing")
    assert (bad_customer.value.http_status, bad_customer.value.param) == (404, "customer")

    with pytest.raises(stripe.InvalidRequestError) as bad_price:
        await _checkout(stripe_client, line_items=[{"price": "plan_old", "quantity": 1}])
    assert bad_price.value.param == "line_items[0][price]"
    assert stripe_server.objects("checkout.session") == []


async def test_complete_checkout_starts_the_subscription(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    session = await _checkout(
        stripe_client,
        customer_email="owner@example.com",
        subscription_data={"metadata": {"organization_id": "org_1", "seats": "3"}},
    )
    completed, subscription = stripe_server.complete_checkout(session.id)

    assert subscription["id"].startswith("sub_")
    assert subscription["object"] == "subscription"
    assert subscription["status"] == "active"
    assert subscription["customer"].startswith("cus_")
    assert subscription["metadata"] == {"organization_id": "org_1", "seats": "3"}  # from subscription_data
    assert subscription["cancel_at_period_end"] is False
    (item,) = subscription["items"]["data"]
    assert (item["price"]["id"], item["quantity"]) == ("price_pro_monthly", 3)
    assert item["current_period_end"] == subscription["current_period_end"] > time.time()
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert completed["subscription"] == subscription["id"]
    assert completed["customer"] == subscription["customer"]
    assert stripe_server.get(subscription["customer"])["email"] == "owner@example.com"

    fetched = await stripe_client.v1.checkout.sessions.retrieve_async(session.id, params={"expand": ["subscription"]})
    assert fetched.status == "complete"
    assert fetched.subscription.id == subscription["id"]
    assert fetched.subscription.items.data[0].price.id == "price_pro_monthly"  # type: ignore[union-attr]

    with pytest.raises(ValueError, match="not open"):
        stripe_server.complete_checkout(session.id)


async def test_complete_checkout_copies_session_metadata_without_subscription_data(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    session = await _checkout(stripe_client)
    _, subscription = stripe_server.complete_checkout(session.id)
    assert subscription["metadata"] == {"organization_id": "org_1", "plan": "pro"}


# --- subscriptions ------------------------------------------------------------------------------


async def test_subscription_update_changes_quantity_and_cancel_at_period_end(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    subscription = await _subscription(stripe_client, stripe_server)
    item_id = subscription["items"].data[0].id

    updated = await stripe_client.v1.subscriptions.update_async(
        subscription.id,
        params={
            "items": [{"id": item_id, "quantity": 7}],
            "proration_behavior": "create_prorations",
            "metadata": {"seats": "7", "plan": ""},  # an empty value unsets a key
        },
    )
    assert updated["items"].data[0].quantity == 7
    assert updated.metadata.to_dict() == {"organization_id": "org_1", "seats": "7"}
    (request,) = stripe_server.requests_to("POST", f"/v1/subscriptions/{subscription.id}")
    assert ("items[0][id]", item_id) in request.form
    assert ("items[0][quantity]", "7") in request.form
    assert request.params["proration_behavior"] == "create_prorations"

    by_quantity = await stripe_client.v1.subscriptions.update_async(subscription.id, params={"quantity": 2})
    assert by_quantity["items"].data[0].quantity == 2

    canceling = await stripe_client.v1.subscriptions.update_async(
        subscription.id, params={"cancel_at_period_end": True}
    )
    assert canceling.cancel_at_period_end is True
    assert canceling.status == "active"
    assert canceling.cancel_at == subscription["items"].data[0].current_period_end
    assert ("cancel_at_period_end", "true") in stripe_server.requests[-1].form

    resumed = await stripe_client.v1.subscriptions.update_async(subscription.id, params={"cancel_at_period_end": False})
    assert (resumed.cancel_at_period_end, resumed.cancel_at) == (False, None)
    assert stripe_server.get(subscription.id)["items"]["data"][0]["quantity"] == 2


async def test_a_refused_update_changes_nothing(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    subscription = await _subscription(stripe_client, stripe_server)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await stripe_client.v1.subscriptions.update_async(
            subscription.id, params={"quantity": 9, "items": [{"id": "si_missing", "quantity": 9}]}
        )
    assert raised.value.param == "items[0][id]"
    assert stripe_server.get(subscription.id)["items"]["data"][0]["quantity"] == 3

    with pytest.raises(stripe.InvalidRequestError) as bad_behavior:
        await stripe_client.v1.subscriptions.update_async(subscription.id, params={"proration_behavior": "sometimes"})
    assert bad_behavior.value.param == "proration_behavior"


async def test_subscription_cancel_ends_it_at_once(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    subscription = await _subscription(stripe_client, stripe_server)

    canceled = await stripe_client.v1.subscriptions.cancel_async(subscription.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    assert canceled.ended_at is not None
    assert stripe_server.requests[-1].method == "DELETE"
    assert (await stripe_client.v1.subscriptions.retrieve_async(subscription.id)).status == "canceled"

    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.subscriptions.update_async(subscription.id, params={"quantity": 4})
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.subscriptions.cancel_async(subscription.id)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await stripe_client.v1.subscriptions.cancel_async("sub_missing")
    assert missing.value.code == "resource_missing"


async def test_subscriptions_list_by_customer(stripe_client: stripe.StripeClient, stripe_server: StripeServer) -> None:
    subscription = await _subscription(stripe_client, stripe_server)
    listed = await stripe_client.v1.subscriptions.list_async(params={"customer": subscription.customer})
    assert [s.id for s in listed.data] == [subscription.id]
    await stripe_client.v1.subscriptions.cancel_async(subscription.id)
    assert (await stripe_client.v1.subscriptions.list_async(params={"customer": subscription.customer})).data == []


async def test_set_subscription_and_invoices_for_webhook_payloads(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    subscription = await _subscription(stripe_client, stripe_server)
    past_due = stripe_server.set_subscription(subscription.id, status="past_due", current_period_end=2_000_000_000)
    assert past_due["status"] == "past_due"
    assert past_due["items"]["data"][0]["current_period_end"] == 2_000_000_000

    invoice = stripe_server.create_invoice(subscription.id, status="open")
    assert invoice["id"].startswith("in_")
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription.id
    assert invoice["amount_paid"] == 0
    assert (await stripe_client.v1.invoices.retrieve_async(invoice["id"])).status == "open"


# --- meter events -------------------------------------------------------------------------------


async def test_a_repeated_meter_event_identifier_is_billed_once(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    params = {
        "event_name": "jobs_completed",
        "payload": {"value": "1", "stripe_customer_id": "cus_123"},
        "identifier": "job_42",
    }
    first = await stripe_client.v1.billing.meter_events.create_async(params=params)  # type: ignore[arg-type]
    again = await stripe_client.v1.billing.meter_events.create_async(params=params)  # type: ignore[arg-type]

    assert first.object == "billing.meter_event"
    assert (first.event_name, first.identifier) == ("jobs_completed", "job_42")
    assert first.payload.to_dict() == {"value": "1", "stripe_customer_id": "cus_123"}
    assert again.to_dict() == first.to_dict()
    assert len(stripe_server.requests_to("POST", "/v1/billing/meter_events")) == 2
    assert [e["identifier"] for e in stripe_server.meter_events] == ["job_42"]

    other = {**params, "identifier": "job_43"}
    await stripe_client.v1.billing.meter_events.create_async(params=other)  # type: ignore[arg-type]
    assert [e["identifier"] for e in stripe_server.meter_events] == ["job_42", "job_43"]


async def test_a_meter_event_needs_a_customer_and_a_value(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await stripe_client.v1.billing.meter_events.create_async(
            params={"event_name": "jobs_completed", "payload": {"value": "1"}}
        )
    assert raised.value.param == "payload[stripe_customer_id]"


# --- idempotency and retries --------------------------------------------------------------------


async def test_an_idempotency_key_replays_the_first_response(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    params = {"email": "owner@example.com"}
    first = await stripe_client.v1.customers.create_async(params=params, options={"idempotency_key": "key-1"})
    again = await stripe_client.v1.customers.create_async(params=params, options={"idempotency_key": "key-1"})
    assert again.id == first.id
    assert len(stripe_server.objects("customer")) == 1
    assert stripe_server.requests[-1].replayed

    with pytest.raises(stripe.IdempotencyError):
        await stripe_client.v1.customers.create_async(
            params={"email": "other@example.com"}, options={"idempotency_key": "key-1"}
        )
    other = await stripe_client.v1.customers.create_async(params=params, options={"idempotency_key": "key-2"})
    assert other.id != first.id


async def test_the_library_retries_a_5xx_with_the_same_idempotency_key(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    stripe_server.fail_next(1, status=500)
    customer = await stripe_client.v1.customers.create_async(params={"email": "owner@example.com"})

    failed, succeeded = stripe_server.requests_to("POST", "/v1/customers")
    assert (failed.status, succeeded.status) == (500, 200)
    assert failed.idempotency_key == succeeded.idempotency_key
    assert [c["id"] for c in stripe_server.objects("customer")] == [customer.id]


async def test_failures_beyond_the_retries_reach_the_caller(
    stripe_client: stripe.StripeClient, stripe_server: StripeServer
) -> None:
    stripe_server.fail_next(3, status=503)  # the first try and both retries
    with pytest.raises(stripe.APIError) as raised:
        await stripe_client.v1.customers.retrieve_async("cus_any")
    assert raised.value.http_status == 503
    assert len(stripe_server.requests) == 3


# --- webhooks -----------------------------------------------------------------------------------


def test_sign_webhook_is_accepted_by_the_stripe_library() -> None:
    evt = event("checkout.session.completed", {"id": "cs_test_1", "object": "checkout.session", "livemode": False})
    payload = json.dumps(evt).encode()

    constructed = stripe.Webhook.construct_event(payload, sign_webhook(payload, WEBHOOK_SECRET), WEBHOOK_SECRET)

    assert constructed.id == evt["id"]
    assert constructed.id.startswith("evt_")
    assert constructed.type == "checkout.session.completed"
    assert constructed.data.object["id"] == "cs_test_1"
    assert evt["object"] == "event"
    assert evt["livemode"] is False
    assert evt["api_version"] == API_VERSION


def test_a_tampered_payload_wrong_secret_or_stale_signature_is_rejected() -> None:
    payload = json.dumps(event("invoice.paid", {"id": "in_1", "object": "invoice"})).encode()
    header = sign_webhook(payload, WEBHOOK_SECRET)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace(b"in_1", b"in_2"), header, WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_webhook(payload, "whsec_other"), WEBHOOK_SECRET)
    stale = sign_webhook(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, stale, WEBHOOK_SECRET)


def test_signature_header_format() -> None:
    header = sign_webhook(b'{"id": "evt_1"}', "whsec_x", timestamp=1700000000)
    timestamp, signature = header.split(",")
    assert timestamp == "t=1700000000"
    assert signature.startswith("v1=")
    assert len(signature) == 3 + 64

    body, headers = signed_webhook(event("invoice.paid", {"id": "in_1"}, id="evt_fixed", created=5), "whsec_x")
    assert json.loads(body)["id"] == "evt_fixed"
    assert json.loads(body)["created"] == 5
    stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_x")
