"""Stripe Connect (off unless STRIPE_CONNECT_ENABLED): a Standard connected account per organization, its
onboarding link with allowlisted URLs, and its state kept current by `account.updated` on the Connect
endpoint's own secret, through the real stripe library against the stand-in."""

from __future__ import annotations

import httpx

from backplane.core.config import Settings
from tests.billing.stripe_mode import WEBHOOK_SECRET, stripe_app_for
from tests.fixtures.assertions import assert_error, assert_invalid, assert_licensing_error, assert_role_forbidden
from tests.fixtures.auth import Account
from tests.fixtures.stripe_server import StripeServer, event, signed_webhook

CONNECT_SECRET = "whsec_connect_secret"
CONNECT_WEBHOOK = "/api/v1/webhooks/stripe/connect/"
URLS = {"refresh_url": "https://your-app.com/stripe/refresh", "return_url": "https://your-app.com/stripe/return"}
ENABLED = {
    "stripe_connect_enabled": True,
    "stripe_connect_webhook_secret": CONNECT_SECRET,
    "stripe_connect_redirect_allowlist": "https://your-app.com, https://other.example",
}
UNAVAILABLE = "The payment provider could not be reached. Retry later."
NONE_YET = "This organization has no connected account yet. Create one with POST /v1/connect/account."


async def _deliver(http: httpx.AsyncClient, evt: dict[str, object], secret: str = CONNECT_SECRET) -> httpx.Response:
    body, headers = signed_webhook(evt, secret)
    return await http.post(CONNECT_WEBHOOK, content=body, headers=headers)


async def test_onboarding_creates_one_standard_account_and_webhooks_keep_it_current(
    settings: Settings, stripe_server: StripeServer
) -> None:
    async with stripe_app_for(settings, stripe_server, **ENABLED) as (http, api):
        owner = await api.register("platform@example.com")
        assert_error(await http.get("/v1/connect/account", headers=owner.headers), 404, "NOT_FOUND", NONE_YET)
        first = await http.post("/v1/connect/account", json=URLS, headers=owner.headers)
        assert first.status_code == 200, first.text
        body = first.json()
        account_id = body["account"]["id"]
        assert account_id.startswith("acct_") and body["onboarding_url"].startswith("https://connect.stripe.test/")
        assert (body["account"]["charges_enabled"], body["account"]["payouts_enabled"]) == (False, False)
        assert "external_account" in body["account"]["requirements"]["currently_due"]
        [created] = stripe_server.requests_to("POST", "/v1/accounts")
        assert created.params["type"] == "standard"
        assert created.params["metadata"] == {"organization_id": owner.organization_id}
        [link] = stripe_server.requests_to("POST", "/v1/account_links")
        assert link.params == {"account": account_id, "type": "account_onboarding", **URLS}

        again = await http.post("/v1/connect/account", json=URLS, headers=owner.headers)
        assert again.json()["account"]["id"] == account_id  # one account, a fresh link
        assert len(stripe_server.objects("account")) == 1

        # Onboarding finishes on Stripe; the Connect endpoint hears of it.
        done = stripe_server.set_account(
            account_id,
            charges_enabled=True,
            payouts_enabled=True,
            details_submitted=True,
            requirements={"currently_due": [], "eventually_due": [], "past_due": [], "pending_verification": [],
                          "disabled_reason": None},
        )  # fmt: skip
        stale = {**done, "charges_enabled": False}  # the event's copy is never what is applied
        wrong_secret = await _deliver(http, event("account.updated", done), secret=WEBHOOK_SECRET)
        assert wrong_secret.status_code == 400
        assert (await _deliver(http, event("account.updated", stale))).json() == {"received": True, "duplicate": False}
        shown = (await http.get("/v1/connect/account", headers=owner.headers)).json()
        assert (shown["charges_enabled"], shown["payouts_enabled"], shown["details_submitted"]) == (True, True, True)
        assert shown["requirements"]["currently_due"] == []
        # Someone else's account on the platform is not ours: acknowledged, nothing changes.
        foreign = await _deliver(http, event("account.updated", {"id": "acct_notours", "object": "account"}))
        assert foreign.status_code == 200


async def test_urls_must_be_allowlisted_and_only_the_owner_onboards(
    settings: Settings, stripe_server: StripeServer
) -> None:
    async with stripe_app_for(settings, stripe_server, **ENABLED) as (http, api):
        owner = await api.register("platform@example.com")
        foreign = await http.post(
            "/v1/connect/account", json={**URLS, "return_url": "https://evil.example/return"}, headers=owner.headers
        )
        assert_invalid(foreign, {"return_url": ["This URL's origin is not in STRIPE_CONNECT_REDIRECT_ALLOWLIST."]})
        lookalike = await http.post(
            "/v1/connect/account",
            json={**URLS, "refresh_url": "https://your-app.com.evil.example/r"},
            headers=owner.headers,
        )
        assert_invalid(lookalike, {"refresh_url": ["This URL's origin is not in STRIPE_CONNECT_REDIRECT_ALLOWLIST."]})
        malformed = await http.post("/v1/connect/account", json={"refresh_url": "nope"}, headers=owner.headers)
        assert malformed.status_code == 422
        assert stripe_server.requests_to("POST", "/v1/accounts") == []

        admin = await api.register("admin@example.com")
        await api.add_member(owner, admin, "admin")
        denied = await http.post("/v1/connect/account", json=URLS, headers=admin.in_org(owner.organization_id))
        assert_role_forbidden(denied, "admin", "owner")

        stripe_server.down()
        down = await http.post("/v1/connect/account", json=URLS, headers=owner.headers)
        stripe_server.down(None)
        assert_error(down, 502, "BILLING_UNAVAILABLE", UNAVAILABLE)
        assert_error(await http.get("/v1/connect/account", headers=owner.headers), 404, "NOT_FOUND", NONE_YET)


async def test_connect_is_off_unless_enabled(http: httpx.AsyncClient, owner: Account) -> None:
    for response in (
        await http.post("/v1/connect/account", json=URLS, headers=owner.headers),
        await http.get("/v1/connect/account", headers=owner.headers),
    ):
        assert_error(response, 404, "NOT_FOUND", "Stripe Connect is not enabled on this service.")
    body, headers = signed_webhook(event("account.updated", {"id": "acct_1"}), CONNECT_SECRET)
    refused = await http.post(CONNECT_WEBHOOK, content=body, headers=headers)
    assert_licensing_error(
        refused, 400, "Invalid webhook", "Stripe webhooks are not configured here (STRIPE_CONNECT_WEBHOOK_SECRET is "
        "unset).",
    )  # fmt: skip
