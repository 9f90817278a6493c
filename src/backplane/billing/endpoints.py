"""Subscriptions on both surfaces, local checkout, and Stripe webhooks in."""

from __future__ import annotations

from html import escape
from typing import Annotated

import stripe
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from backplane.access.requirements import LiveOwner, LiveReader, Public
from backplane.billing import service, webhooks
from backplane.billing.deps import PlatformLimit
from backplane.billing.plans import PLANS, price_ids
from backplane.billing.schemas import (
    CancelRequest,
    CheckoutRequest,
    CheckoutResponse,
    PlanList,
    PlanRead,
    SeatsUpdate,
    SubscriptionRead,
    WebhookAck,
    plan_limits,
    subscription_read,
)
from backplane.core import metrics
from backplane.core.config import Settings
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors, platform_errors
from backplane.core.redis import RedisDep
from backplane.licenses.limits import LicenseOperationsLimit

licensing = APIRouter(
    prefix="/api/v1/subscriptions", tags=["Subscriptions"], responses=licensing_errors(400, 401, 403, 429)
)
platform = APIRouter(prefix="/v1/subscriptions", tags=["Subscriptions"], responses=platform_errors(401, 403, 429))
stripe_webhooks = APIRouter(prefix="/api/v1/webhooks", tags=["Stripe webhooks"])


async def _stripe(request: Request) -> stripe.StripeClient | None:
    client: stripe.StripeClient | None = request.app.state.stripe
    return client


StripeDep = Annotated[stripe.StripeClient | None, Depends(_stripe)]


def _plans(settings: Settings) -> PlanList:
    prices = price_ids(settings.stripe)
    return PlanList(
        plans=[
            PlanRead(
                id=str(name),
                name=str(name).capitalize(),
                price_id=prices[name],
                monthly_price_cents=plan.monthly_price_cents,
                limits=plan_limits(plan),
            )
            for name, plan in PLANS.items()
        ]
    )


@licensing.get(
    "/plans/",
    response_model=PlanList,
    summary="Plans, prices and limits (public)",
    dependencies=[Public("the public price list")],
)
async def list_plans(settings: SettingsDep) -> PlanList:
    return _plans(settings)


@licensing.get(
    "/current/",
    response_model=SubscriptionRead,
    dependencies=[LicenseOperationsLimit],
    summary="The current subscription",
)
async def current_subscription(principal: LiveReader, session: SessionDep, settings: SettingsDep) -> SubscriptionRead:
    return subscription_read(await service.current(session, principal.organization_id), settings)


@licensing.post(
    "/checkout/",
    response_model=CheckoutResponse,
    dependencies=[LicenseOperationsLimit],
    summary="Start a checkout (owner)",
    description="Returns Stripe Checkout's URL, or in local billing mode a URL on this service: POST to it with the "
    "same credentials to complete the purchase (opening it shows a confirmation page). The subscription and its "
    "license are created when the checkout completes.",
    responses=licensing_errors(409, 502),
)
async def checkout(
    body: CheckoutRequest,
    principal: LiveOwner,
    session: SessionDep,
    client: StripeDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> CheckoutResponse:
    url, session_id = await service.create_checkout(
        session,
        client,
        redis,
        settings,
        principal,
        price_id=body.price_id,
        seats=body.seats,
        success_url=str(body.success_url),
        cancel_url=str(body.cancel_url),
    )
    return CheckoutResponse(checkout_url=url, session_id=session_id)


@licensing.post(
    "/update/",
    response_model=SubscriptionRead,
    dependencies=[LicenseOperationsLimit],
    summary="Change the number of seats (owner)",
    description="Also changes the license's seats. Fewer seats than live sessions never ends a running session: "
    "new acquires are refused until the count is under the limit.",
    responses=licensing_errors(409, 502),
)
async def update_subscription(
    body: SeatsUpdate,
    principal: LiveOwner,
    session: SessionDep,
    client: StripeDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> SubscriptionRead:
    subscription = await service.update_seats(session, client, redis, settings, principal, body.seats)
    return subscription_read(subscription, settings)


@licensing.post(
    "/cancel/",
    response_model=SubscriptionRead,
    dependencies=[LicenseOperationsLimit],
    summary="Cancel (at period end by default) (owner)",
    responses=licensing_errors(409, 502),
)
async def cancel_subscription(
    body: CancelRequest,
    principal: LiveOwner,
    session: SessionDep,
    client: StripeDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> SubscriptionRead:
    subscription = await service.cancel(session, client, redis, settings, principal, immediately=body.immediately)
    return subscription_read(subscription, settings)


LocalCheckoutId = Annotated[str, Path(max_length=64, pattern=r"^cs_local_[0-9a-f]{32}$")]
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


@licensing.get(
    "/local-checkout/{session_id}/",
    summary="See a local-mode checkout (no Stripe account needed)",
    description="A page that shows what the checkout buys and how to complete it; opening it completes nothing.",
    response_class=HTMLResponse,
    responses=licensing_errors(404),
    dependencies=[Public("local billing mode: a page that shows the checkout and changes nothing")],
)
async def show_local_checkout(session_id: LocalCheckoutId, redis: RedisDep, settings: SettingsDep) -> HTMLResponse:
    pending = await service.local_checkout(redis, session_id)
    url = f"{settings.public_base_url.rstrip('/')}/api/v1/subscriptions/local-checkout/{session_id}/"
    plan, seats = str(pending["plan"]).capitalize(), int(pending["seats"])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confirm the purchase</title>
<style>body {{ font-family: sans-serif; max-width: 42rem; margin: 3rem auto; }}</style></head>
<body><h1>Confirm the purchase</h1>
<p>{escape(plan)} plan, {seats} seats. Local billing mode: no payment is taken.</p>
<p>Opening this page completes nothing. The account that started the checkout completes it with its own
access token:</p>
<pre>curl -X POST {escape(url)} -H "Authorization: Bearer ACCESS_TOKEN"</pre>
</body></html>
"""
    return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY})


@licensing.post(
    "/local-checkout/{session_id}/",
    summary="Complete a local-mode checkout (the account that started it)",
    response_class=RedirectResponse,
    status_code=303,
    responses={303: {"description": "Redirect to the checkout's success_url."}, **licensing_errors(401, 403, 404)},
)
async def complete_local_checkout(
    session_id: LocalCheckoutId, principal: LiveOwner, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> RedirectResponse:
    success_url = await service.complete_local_checkout(session, redis, settings, principal, session_id)
    return RedirectResponse(success_url, status_code=303)


@stripe_webhooks.post(
    "/stripe/",
    response_model=WebhookAck,
    summary="Stripe webhooks",
    description="Verified with the Stripe-Signature header (tolerance 300 s). Each event id is applied once; "
    "a repeat answers 200 with `duplicate: true`. Unknown event types are acknowledged and ignored. The state "
    "applied is Stripe's current object, fetched under the organization's billing lock, whatever the order of "
    "events; Stripe unreachable answers 502 `Billing unavailable` and keeps nothing, so Stripe's retry applies it.",
    responses=licensing_errors(400, 502),
    dependencies=[Public("Stripe; the Stripe-Signature header is verified")],
)
async def stripe_webhook(
    request: Request, session: SessionDep, client: StripeDep, redis: RedisDep, settings: SettingsDep
) -> WebhookAck:
    payload = await request.body()
    try:
        event = webhooks.verify(payload, request.headers.get("stripe-signature"), settings)
    except webhooks.InvalidWebhook:
        metrics.STRIPE_EVENTS.labels("unverified", "refused").inc()
        raise
    kind = metrics.stripe_event_type(event["type"])
    try:
        processed = await webhooks.process(session, client, redis, settings, event)
    except BaseException:
        metrics.STRIPE_EVENTS.labels(kind, "failed").inc()
        raise
    outcome = "duplicate" if not processed else "applied" if event["type"] in webhooks.HANDLED else "ignored"
    metrics.STRIPE_EVENTS.labels(kind, outcome).inc()
    return WebhookAck(received=True, duplicate=not processed)


@platform.get("", response_model=SubscriptionRead, dependencies=[PlatformLimit], summary="The current subscription")
async def platform_current(principal: LiveReader, session: SessionDep, settings: SettingsDep) -> SubscriptionRead:
    return subscription_read(await service.current(session, principal.organization_id), settings)


@platform.get(
    "/plans",
    response_model=PlanList,
    summary="Plans, prices and limits (public)",
    dependencies=[Public("the public price list")],
)
async def platform_plans(settings: SettingsDep) -> PlanList:
    return _plans(settings)
