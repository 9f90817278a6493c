"""Stripe webhooks in: verified with the stripe library, each event id applied exactly once, as Stripe's
current state."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing import connect, invoices, sync
from backplane.billing.repository import SubscriptionRepository, claim_stripe_event
from backplane.core.config import Settings
from backplane.core.errors import AppError
from backplane.events.service import record_event

logger = logging.getLogger(__name__)

HANDLED = {
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
}


class InvalidWebhook(AppError):
    status_code, code, title = 400, "INVALID_WEBHOOK", "Invalid webhook"


def verify(payload: bytes, signature: str | None, settings: Settings, *, connect: bool = False) -> dict[str, Any]:
    """The event, verified with STRIPE_WEBHOOK_SECRET (or the Connect endpoint's secret)."""
    secret = settings.stripe.stripe_connect_webhook_secret if connect else settings.stripe.stripe_webhook_secret
    if secret is None:
        name = "STRIPE_CONNECT_WEBHOOK_SECRET" if connect else "STRIPE_WEBHOOK_SECRET"
        raise InvalidWebhook(f"Stripe webhooks are not configured here ({name} is unset).")
    if not signature:
        raise InvalidWebhook("The Stripe-Signature header is missing.")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret.get_secret_value(), tolerance=settings.stripe.stripe_webhook_tolerance_seconds
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhook(f"Signature verification failed: {exc.user_message or exc}") from exc
    except ValueError as exc:
        raise InvalidWebhook("The payload is not a Stripe event.") from exc
    data = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise InvalidWebhook("The payload is not a Stripe event.")
    return data


async def process(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    event: Mapping[str, Any],
) -> bool:
    """Apply one verified event. False when this event id was already processed.

    The event only says what to look at: the state applied is Stripe's current object, fetched
    under the organization's billing lock (sync.py), so events applied in any order, twice, or
    interleaved with API calls end in Stripe's state. Stripe unreachable: 502, and nothing of the
    event is kept (its id is not claimed), so Stripe delivers it again.
    """
    if not await claim_stripe_event(session, event["id"], event["type"]):
        return False
    kind = event["type"]
    if kind not in HANDLED or kind == "checkout.session.expired":
        logger.info("ignoring Stripe event %s of type %s", event["id"], kind)
        return True
    obj: Mapping[str, Any] = (event.get("data") or {}).get("object") or {}
    if client is None:
        logger.warning("Stripe event %s not applied: local billing mode has no Stripe client", event["id"])
        return True
    if kind == "checkout.session.completed":
        await _checkout_completed(session, client, redis, settings, obj)
    elif kind.startswith("customer.subscription."):
        subscription_id = obj.get("id")
        organization_id = await _organization_of(session, obj, subscription_id=subscription_id)
        if organization_id is not None and isinstance(subscription_id, str):
            fallback = obj if kind == "customer.subscription.deleted" else None
            await sync.apply_from_stripe(
                session, client, redis, settings, organization_id, subscription_id, fallback=fallback
            )
    elif kind.startswith("invoice.payment_"):
        await _invoice(session, client, redis, settings, obj, succeeded=kind == "invoice.payment_succeeded")
    return True


async def _checkout_completed(
    session: AsyncSession,
    client: stripe.StripeClient,
    redis: Redis,
    settings: Settings,
    obj: Mapping[str, Any],
) -> None:
    checkout_id = obj.get("id")
    remote = await sync.retrieve(client, "checkout.sessions", checkout_id) if isinstance(checkout_id, str) else None
    if remote is None or remote.get("status") != "complete" or not isinstance(remote.get("subscription"), str):
        logger.warning("checkout.session.completed for a session Stripe does not show complete: %s", checkout_id)
        return
    organization_id = await _organization_of(session, remote, subscription_id=remote["subscription"])
    if organization_id is None:
        logger.warning("checkout session %s belongs to no organization of ours", checkout_id)
        return
    await sync.apply_from_stripe(session, client, redis, settings, organization_id, remote["subscription"])


async def _invoice(
    session: AsyncSession,
    client: stripe.StripeClient,
    redis: Redis,
    settings: Settings,
    obj: Mapping[str, Any],
    *,
    succeeded: bool,
) -> None:
    invoice_id = obj.get("id")
    remote = await sync.retrieve(client, "invoices", invoice_id) if isinstance(invoice_id, str) else None
    if remote is None:
        logger.warning("invoice event for an invoice Stripe does not have: %s", invoice_id)
        return
    subscription_id = invoices.subscription_of(remote)
    organization_id = await _organization_of(session, remote, subscription_id=subscription_id)
    if organization_id is None:
        return
    subscription = None
    if subscription_id is not None:
        subscription = await sync.apply_from_stripe(session, client, redis, settings, organization_id, subscription_id)
    subscription = subscription or await SubscriptionRepository(session).get_for_organization(organization_id)
    await invoices.keep_copy(session, organization_id, remote)
    record_event(
        session,
        organization_id,
        "payment.succeeded" if succeeded else "payment.failed",
        {
            "invoice_id": remote.get("id"),
            "amount": remote.get("amount_paid") if succeeded else remote.get("amount_due"),
            "currency": remote.get("currency"),
            "attempt_count": remote.get("attempt_count"),
            "subscription_id": str(subscription.id) if subscription else None,
        },
        livemode=bool(remote.get("livemode")),
    )


async def _organization_of(session: AsyncSession, obj: Mapping[str, Any], *, subscription_id: Any) -> uuid.UUID | None:
    metadata = obj.get("metadata") or {}
    repository = SubscriptionRepository(session)
    for candidate in (metadata.get("organization_id"), obj.get("client_reference_id")):
        if candidate:
            try:
                organization_id = uuid.UUID(str(candidate))
            except ValueError:
                continue  # not one of ours: fall back to the Stripe ids we stored
            if await repository.organization_exists(organization_id):
                return organization_id
    customer = obj.get("customer") if isinstance(obj.get("customer"), str) else None
    return await repository.find_organization(
        subscription_id=subscription_id if isinstance(subscription_id, str) else None, customer_id=customer
    )


async def process_connect(session: AsyncSession, client: stripe.StripeClient | None, event: Mapping[str, Any]) -> bool:
    """Apply one verified event of the Connect endpoint (`account.updated`). False: already processed."""
    if not await claim_stripe_event(session, event["id"], event["type"]):
        return False
    if event["type"] != "account.updated" or client is None:
        logger.info("ignoring Stripe Connect event %s of type %s", event["id"], event["type"])
        return True
    await connect.apply_account_event(session, client, (event.get("data") or {}).get("object") or {})
    return True
