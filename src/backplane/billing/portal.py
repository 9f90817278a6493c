"""Self-service: Stripe's Billing Portal (payment methods, invoices, cancellation), or in local billing
mode a page of this service's own. Changes made in Stripe's portal arrive as webhooks (webhooks.py)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from html import escape

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.billing.invoices import list_invoices
from backplane.billing.models import Invoice
from backplane.billing.repository import SubscriptionRepository
from backplane.billing.schemas import PortalSession
from backplane.billing.service import BillingUnavailable
from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import Conflict, NotFound

LOCAL_PORTAL_TTL_SECONDS = 900  # like a Stripe portal session's link: short-lived, then ask again
LOCAL_PORTAL_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{43}$"  # secrets.token_urlsafe(32)
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def return_url(settings: Settings) -> str:
    return settings.stripe.stripe_portal_return_url or settings.public_base_url


async def create_session(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    principal: Principal,
) -> PortalSession:
    back = return_url(settings)
    if client is None:
        token = secrets.token_urlsafe(32)
        await redis.set(keys.local_portal(token), str(principal.organization_id), ex=LOCAL_PORTAL_TTL_SECONDS)
        url = f"{settings.public_base_url.rstrip('/')}/v1/billing/portal/local/{token}"
        expires_at = utcnow() + timedelta(seconds=LOCAL_PORTAL_TTL_SECONDS)
        return PortalSession(url=url, return_url=back, expires_at=expires_at)
    subscription = await SubscriptionRepository(session).get_for_organization(principal.organization_id)
    if subscription is None or subscription.stripe_customer_id is None:
        raise Conflict("This organization has no Stripe customer yet. Start a subscription with checkout first.")
    try:
        portal = await client.v1.billing_portal.sessions.create_async(
            params={"customer": subscription.stripe_customer_id, "return_url": back}
        )
    except stripe.StripeError as exc:
        raise BillingUnavailable() from exc
    return PortalSession(url=portal.url, return_url=back, expires_at=None)


_GONE = "This page does not exist or has expired. Ask for a new one with POST /v1/billing/portal."


async def local_page(session: AsyncSession, redis: Redis, settings: Settings, token: str) -> str:
    """Local billing mode's portal: the subscription, its invoices, and how to change or cancel it."""
    organization = await redis.get(keys.local_portal(token))
    if organization is None:
        raise NotFound(_GONE)
    organization_id = uuid.UUID(organization)
    subscription = await SubscriptionRepository(session).get_for_organization(organization_id)
    invoices, _ = await list_invoices(session, None, settings, organization_id, limit=100, cursor=None)
    if subscription is None:
        summary = "Free plan. Buy a plan with POST /api/v1/subscriptions/checkout/."
    else:
        summary = f"{subscription.plan.capitalize()} plan, {subscription.seats} seats, {subscription.status}"
        if subscription.cancel_at_period_end:
            summary += ", ends at the end of the period"
    rows = "".join(
        f"<tr><td>{escape(i['number'] or '')}</td><td>{i['created_at']:%Y-%m-%d}</td>"
        f"<td>{escape(i['description'] or '')}</td><td>{_money(i['amount_due'], i['currency'])}</td>"
        f"<td>{escape(i['status'])}</td></tr>"
        for i in invoices
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Billing</title>
<style>body {{ font-family: sans-serif; max-width: 48rem; margin: 3rem auto; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ccc; padding: .4rem; }}</style>
</head><body><h1>Billing</h1>
<p>{escape(summary)}. Local billing mode: no payment method is kept and no payment is taken.</p>
<h2>Invoices</h2>
<table><tr><th>Number</th><th>Date</th><th>Description</th><th>Amount</th><th>Status</th></tr>{rows}</table>
<h2>Change or cancel</h2>
<p>Seats: <code>POST /api/v1/subscriptions/update/</code>. Cancel: <code>POST /api/v1/subscriptions/cancel/</code>.</p>
<p><a href="{escape(return_url(settings))}">Back</a></p>
</body></html>
"""


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {escape(currency.upper())}"


def invoice_page(invoice: Invoice) -> str:
    """The printable page of a local-mode invoice."""
    period = (
        f"{invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}"
        if invoice.period_start and invoice.period_end
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {escape(invoice.number or "")}</title>
<style>body {{ font-family: sans-serif; max-width: 42rem; margin: 3rem auto; }}
table {{ border-collapse: collapse; width: 100%; }} td {{ border-bottom: 1px solid #ccc; padding: .4rem; }}
@media print {{ body {{ margin: 0; }} }}</style></head>
<body><h1>Invoice {escape(invoice.number or "")}</h1>
<table>
<tr><td>Date</td><td>{invoice.created_at:%Y-%m-%d}</td></tr>
<tr><td>Organization</td><td>{invoice.organization_id}</td></tr>
<tr><td>Description</td><td>{escape(invoice.description or "")}</td></tr>
<tr><td>Period</td><td>{period}</td></tr>
<tr><td>Amount due</td><td>{_money(invoice.amount_due, invoice.currency)}</td></tr>
<tr><td>Amount paid</td><td>{_money(invoice.amount_paid, invoice.currency)}</td></tr>
<tr><td>Status</td><td>{escape(invoice.status)}</td></tr>
</table>
<p>Local billing mode: no payment was taken.</p>
</body></html>
"""
