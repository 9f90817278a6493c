"""Invoices on both surfaces and the Billing Portal, through the real stripe library against the stand-in,
including Stripe being down; and local billing mode's own invoices and portal page."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from fastapi import FastAPI

from backplane.core.config import Settings
from tests.billing.stripe_mode import CHECKOUT, bought, deliver, stripe_app_for
from tests.fixtures.assertions import (
    assert_error,
    assert_invalid,
    assert_licensing_fields,
    assert_not_found,
    assert_role_forbidden,
)
from tests.fixtures.auth import Account, Api
from tests.fixtures.stripe_server import StripeServer, event

UNAVAILABLE = "The payment provider could not be reached. Retry later."
FIELDS = {
    "id", "number", "status", "amount_due", "amount_paid", "currency", "description", "period_start", "period_end",
    "hosted_invoice_url", "invoice_pdf", "livemode", "created_at",
}  # fmt: skip


async def _three_invoices(http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer) -> list[str]:
    """The purchase's invoice, and before it (by Stripe's `created`) a failed renewal and its successful
    retry, which came with payment events: ids newest first."""
    subscription = await bought(http, owner, stripe_server)
    now = int(time.time())
    failed = stripe_server.create_invoice(subscription["id"], status="open", created=now - 20)
    paid = stripe_server.create_invoice(subscription["id"], created=now - 10)
    for kind, invoice in (("invoice.payment_failed", failed), ("invoice.payment_succeeded", paid)):
        assert (await deliver(http, event(kind, invoice))).status_code == 200
    return [subscription["latest_invoice"], paid["id"], failed["id"]]


async def test_platform_invoices_are_stripes_list_with_a_cursor(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    ids = await _three_invoices(http, owner, stripe_server)
    first = await http.get("/v1/invoices", params={"limit": 2}, headers=owner.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [i["id"] for i in page["data"]] == ids[:2] and page["has_more"] is True
    invoice = page["data"][0]
    assert set(invoice) == FIELDS
    remote = stripe_server.get(ids[0])
    assert (invoice["number"], invoice["status"], invoice["amount_due"], invoice["amount_paid"]) == (
        remote["number"], "paid", 5 * 4900, 5 * 4900,
    )  # fmt: skip
    assert invoice["currency"] == "usd" and invoice["hosted_invoice_url"] == remote["hosted_invoice_url"]
    assert invoice["invoice_pdf"] == remote["invoice_pdf"] and invoice["period_end"] is not None
    second = (await http.get("/v1/invoices", params={"limit": 2, "cursor": page["next_cursor"]},
                             headers=owner.headers)).json()  # fmt: skip
    assert [i["id"] for i in second["data"]] == ids[2:] and second == {**second, "has_more": False, "next_cursor": None}
    [listed] = [r for r in stripe_server.requests_to("GET", "/v1/invoices") if "starting_after" in r.params]
    assert listed.params["starting_after"] == ids[1]


async def test_licensing_invoices_and_their_errors(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    ids = await _three_invoices(http, owner, stripe_server)
    response = await http.get("/api/v1/subscriptions/invoices/", headers=owner.headers)
    body = response.json()
    assert [i["id"] for i in body["invoices"]] == ids
    assert (body["has_more"], body["next_cursor"]) == (False, None)
    bad = await http.get("/api/v1/subscriptions/invoices/", params={"limit": 0}, headers=owner.headers)
    assert_licensing_fields(bad, {"limit": ["Input should be greater than or equal to 1"]})
    forged = await http.get("/v1/invoices", params={"cursor": "in_notone"}, headers=owner.headers)
    assert_invalid(forged, {"cursor": ["Invalid cursor."]})
    assert_invalid(await http.get("/v1/invoices", params={"cursor": "x" * 201}, headers=owner.headers),
                   {"cursor": ["String should have at most 200 characters"]})  # fmt: skip


async def test_invoices_are_for_owners_and_admins_of_that_organization_only(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer, stripe_app: FastAPI
) -> None:
    await _three_invoices(http, owner, stripe_server)
    api = Api(http, stripe_app.state.queue)
    member = await api.register("member@example.com")
    await api.add_member(owner, member, "member")
    admin = await api.register("admin@example.com")
    await api.add_member(owner, admin, "admin")
    assert_role_forbidden(await http.get("/v1/invoices", headers=member.in_org(owner.organization_id)), "member")
    licensing = await http.get("/api/v1/subscriptions/invoices/", headers=member.in_org(owner.organization_id))
    assert licensing.status_code == 403 and set(licensing.json()) == {"error", "detail"}
    assert len((await http.get("/v1/invoices", headers=admin.in_org(owner.organization_id))).json()["data"]) == 3
    # Another organization sees its own (none), never these.
    stranger = await api.register("stranger@example.com", company="Elsewhere")
    assert (await http.get("/v1/invoices", headers=stranger.headers)).json()["data"] == []


async def test_when_stripe_is_down_the_local_copies_answer(
    http: httpx.AsyncClient, owner: Account, stripe_server: StripeServer
) -> None:
    ids = await _three_invoices(http, owner, stripe_server)
    stripe_server.down()
    response = await http.get("/v1/invoices", params={"limit": 1}, headers=owner.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    # The two invoices that came with payment events were kept; the purchase's one was never listed yet.
    assert [i["id"] for i in page["data"]] == ids[1:2] and page["has_more"] is True
    rest = (await http.get("/v1/invoices", params={"cursor": page["next_cursor"]}, headers=owner.headers)).json()
    assert [i["id"] for i in rest["data"]] == ids[2:]
    stripe_server.down(None)
    await http.get("/v1/invoices", headers=owner.headers)  # listing keeps copies of all three
    stripe_server.down()
    assert [i["id"] for i in (await http.get("/v1/invoices", headers=owner.headers)).json()["data"]] == ids
    stripe_server.down(None)


async def test_the_billing_portal_opens_stripes_session_for_the_owner(
    settings: Settings, stripe_server: StripeServer
) -> None:
    return_url = "https://app.example.com/billing"
    async with stripe_app_for(settings, stripe_server, stripe_portal_return_url=return_url) as (http, api):
        owner = await api.register("owner@example.com")
        early = await http.post("/v1/billing/portal", headers=owner.headers)
        assert_error(
            early, 409, "CONFLICT",
            "This organization has no Stripe customer yet. Start a subscription with checkout first.",
        )  # fmt: skip
        await bought(http, owner, stripe_server)
        response = await http.post("/v1/billing/portal", headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["url"].startswith("https://billing.stripe.test/p/session/bps_")
        assert (body["return_url"], body["expires_at"]) == ("https://app.example.com/billing", None)
        [created] = stripe_server.requests_to("POST", "/v1/billing_portal/sessions")
        customer = stripe_server.objects("customer")[0]["id"]
        assert created.params == {"customer": customer, "return_url": "https://app.example.com/billing"}

        admin = await api.register("admin@example.com")
        await api.add_member(owner, admin, "admin")
        denied = await http.post("/v1/billing/portal", headers=admin.in_org(owner.organization_id))
        assert_role_forbidden(denied, "admin", "owner")

        stripe_server.down()
        down = await http.post("/v1/billing/portal", headers=owner.headers)
        stripe_server.down(None)
        assert_error(down, 502, "BILLING_UNAVAILABLE", UNAVAILABLE)


async def test_local_mode_keeps_its_own_invoices_with_a_printable_page_and_its_own_portal(
    client: httpx.AsyncClient, api: Api
) -> None:
    owner = await api.register("local@example.com")
    started = (await client.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)).json()
    completed = await client.post(started["checkout_url"].replace("http://testserver", ""), headers=owner.headers)
    assert completed.status_code == 303
    [invoice] = (await client.get("/v1/invoices", headers=owner.headers)).json()["data"]
    assert (invoice["status"], invoice["amount_due"], invoice["amount_paid"], invoice["invoice_pdf"]) == (
        "paid", 5 * 4900, 5 * 4900, None,
    )  # fmt: skip
    assert invoice["number"].startswith("LOCAL-") and invoice["description"] == "Pro plan, 5 seats, one month"
    page_path = invoice["hosted_invoice_url"].replace("http://testserver", "")
    assert page_path == f"/v1/invoices/{invoice['id']}/page"
    page = await client.get(page_path, headers=owner.headers)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert invoice["number"] in page.text and "245.00 USD" in page.text and "@media print" in page.text
    licensing = (await client.get("/api/v1/subscriptions/invoices/", headers=owner.headers)).json()
    assert [i["id"] for i in licensing["invoices"]] == [invoice["id"]]

    stranger = await api.register("stranger@example.com", company="Elsewhere")
    foreign = await client.get(page_path, headers=stranger.headers)
    assert_error(foreign, 404, "NOT_FOUND", "No such invoice.")
    assert_not_found(await client.get("/v1/invoices/not-a-uuid/page", headers=owner.headers))

    portal = await client.post("/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 200, portal.text
    body: dict[str, Any] = portal.json()
    assert re.fullmatch(r"http://testserver/v1/billing/portal/local/[A-Za-z0-9_-]{43}", body["url"])
    assert body["expires_at"] is not None
    shown = await client.get(body["url"].replace("http://testserver", ""))  # the link is the credential
    assert shown.status_code == 200 and "Pro plan, 5 seats, active" in shown.text and invoice["number"] in shown.text
    gone = await client.get("/v1/billing/portal/local/" + "x" * 43)
    assert_error(gone, 404, "NOT_FOUND", "This page does not exist or has expired. Ask for a new one with POST "
                 "/v1/billing/portal.")  # fmt: skip
