"""Stripe webhooks in: verified with the stripe library, each event id applied exactly once."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing import service
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


def verify(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    secret = settings.stripe.stripe_webhook_secret
    if secret is None:
        raise InvalidWebhook("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET is unset).")
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
    """Apply one verified event. False when this event id was already processed."""
    if not await claim_stripe_event(session, event["id"], event["type"]):
        return False
    if event["type"] not in HANDLED:
        logger.info("ignoring Stripe event %s of type %s", event["id"], event["type"])
        return True
    obj: Mapping[str, Any] = (event.get("data") or {}).get("object") or {}
    at = datetime.fromtimestamp(int(event.get("created") or 0), UTC)
    kind = event["type"]
    if kind == "checkout.session.completed":
        await _checkout_completed(session, client, redis, settings, obj, at)
    elif kind.startswith("customer.subscription."):
        organization_id = await _organization_of(session, obj, subscription_id=obj.get("id"))
        if organization_id is not None:
            state = service.state_from_stripe(obj, settings)
            if kind == "customer.subscription.deleted":
                state = replace(state, status="canceled")
            await service.apply_state(session, redis, settings, organization_id, state, at=at)
    elif kind.startswith("invoice.payment_"):
        await _invoice(session, redis, settings, obj, at, succeeded=kind == "invoice.payment_succeeded")
    return True


async def _checkout_completed(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    obj: Mapping[str, Any],
    at: datetime,
) -> None:
    organization_id = await _organization_of(session, obj, subscription_id=obj.get("subscription"))
    subscription_id = obj.get("subscription")
    if organization_id is None or not isinstance(subscription_id, str) or client is None:
        logger.warning("checkout.session.completed without an organization or subscription: %s", obj.get("id"))
        return
    # Re-read the subscription: the session does not carry its items, and Stripe's current view
    # cannot be older than this event.
    remote = await client.v1.subscriptions.retrieve_async(subscription_id)
    state = service.state_from_stripe(remote.to_dict(), settings)
    await service.apply_state(session, redis, settings, organization_id, state, at=at)


async def _invoice(
    session: AsyncSession, redis: Redis, settings: Settings, obj: Mapping[str, Any], at: datetime, *, succeeded: bool
) -> None:
    subscription_id = obj.get("subscription") or (
        ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    organization_id = await _organization_of(session, obj, subscription_id=subscription_id)
    if organization_id is None:
        return
    subscription = await SubscriptionRepository(session).get_for_organization(organization_id, for_update=True)
    if subscription is not None and subscription.status != "canceled":
        state = replace(service.state_of(subscription), status="active" if succeeded else "past_due")
        await service.apply_state(session, redis, settings, organization_id, state, at=at)
    record_event(
        session,
        organization_id,
        "payment.succeeded" if succeeded else "payment.failed",
        {
            "invoice_id": obj.get("id"),
            "amount": obj.get("amount_paid") if succeeded else obj.get("amount_due"),
            "currency": obj.get("currency"),
            "attempt_count": obj.get("attempt_count"),
            "subscription_id": str(subscription.id) if subscription else None,
        },
        livemode=bool(obj.get("livemode")),
    )


async def _organization_of(session: AsyncSession, obj: Mapping[str, Any], *, subscription_id: Any) -> uuid.UUID | None:
    metadata = obj.get("metadata") or {}
    for candidate in (metadata.get("organization_id"), obj.get("client_reference_id")):
        if candidate:
            try:
                return uuid.UUID(str(candidate))
            except ValueError:
                continue  # not one of ours: fall back to the Stripe ids we stored
    customer = obj.get("customer") if isinstance(obj.get("customer"), str) else None
    return await SubscriptionRepository(session).find_organization(
        subscription_id=subscription_id if isinstance(subscription_id, str) else None, customer_id=customer
    )
