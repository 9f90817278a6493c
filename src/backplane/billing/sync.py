"""Stripe is the source of truth: fetch its current subscription and apply it, and repair drift.

Webhooks (webhooks.py), the daily reconciliation (`billing.reconcile`) and `backplane billing sync`
all end here. Each takes the organization's billing lock first, then asks Stripe (through the
stripe library, which retries network errors, 409, 429 and 5xx answers), then applies what Stripe
answered: whatever order events arrive in, however often, the last one applied was also fetched
last. Stripe's timestamps are never compared with local clock times.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.billing.models import Subscription
from backplane.billing.plans import LIVE_STATUSES
from backplane.billing.repository import SubscriptionRepository
from backplane.billing.service import BillingUnavailable, SubscriptionState, apply_state, state_from_stripe, state_of
from backplane.core.config import Settings
from backplane.core.db import unit_of_work

logger = logging.getLogger(__name__)

RECONCILE_TASK = "billing.reconcile"
# What reconciliation compares (and repairs): the rest of the state follows from these.
COMPARED = (
    "subscription_id",
    "plan",
    "status",
    "seats",
    "current_period_end",
    "cancel_at_period_end",
    "canceled_at",
)


async def retrieve(client: stripe.StripeClient, kind: str, object_id: str) -> dict[str, Any] | None:
    """Stripe's current `kind` object ("subscriptions", "invoices", "checkout.sessions"); None when
    Stripe has no such object. Stripe unreachable or failing after the library's retries: 502."""
    resource: Any = client.v1
    for part in kind.split("."):
        resource = getattr(resource, part)
    try:
        found = await resource.retrieve_async(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise BillingUnavailable() from exc
    except stripe.StripeError as exc:
        logger.warning("Stripe did not answer for %s %s: %s", kind, object_id, exc)
        raise BillingUnavailable() from exc
    result: dict[str, Any] = found.to_dict()
    return result


def _belongs(local: Subscription | None, remote: SubscriptionState) -> bool:
    """Whether Stripe's subscription is the one the organization's row follows: the same one, a first
    one, or a new live one after the old one ended (a late event about an ended subscription never
    overwrites its successor)."""
    if local is None or local.stripe_subscription_id in (None, remote.subscription_id):
        return True
    return remote.status in LIVE_STATUSES and local.status not in LIVE_STATUSES


async def apply_from_stripe(
    session: AsyncSession,
    client: stripe.StripeClient,
    redis: Redis,
    settings: Settings,
    organization_id: uuid.UUID,
    subscription_id: str,
    *,
    fallback: Mapping[str, Any] | None = None,
) -> Subscription | None:
    """Fetch subscription `subscription_id` from Stripe and apply it to the organization, under its lock.

    `fallback`: the state to apply if Stripe no longer has the subscription (a deletion event's
    object, canceled). None: nothing applied (an unknown or foreign subscription).
    """
    repository = SubscriptionRepository(session)
    await repository.lock(organization_id)
    remote = await retrieve(client, "subscriptions", subscription_id)
    if remote is None:
        if fallback is None:
            logger.warning("Stripe has no subscription %s (organization %s)", subscription_id, organization_id)
            return None
        remote = {**fallback, "status": "canceled"}
    state = state_from_stripe(remote, settings)
    local = await repository.get_for_organization(organization_id, for_update=True)
    if not _belongs(local, state):
        logger.info(
            "not applying subscription %s (%s) to organization %s, which follows %s",
            subscription_id,
            state.status,
            organization_id,
            local.stripe_subscription_id if local else None,
        )
        return None
    return await apply_state(session, redis, settings, organization_id, state)


def differences(local: Subscription, remote: SubscriptionState) -> dict[str, tuple[Any, Any]]:
    """{field: (ours, Stripe's)} for every compared field that differs."""
    ours, theirs = asdict(state_of(local)), asdict(remote)
    return {name: (ours[name], theirs[name]) for name in COMPARED if ours[name] != theirs[name]}


async def reconcile_one(
    session: AsyncSession,
    client: stripe.StripeClient,
    redis: Redis,
    settings: Settings,
    organization_id: uuid.UUID,
) -> dict[str, Any]:
    """Compare the organization's subscription with Stripe's and repair what differs (recorded as the
    usual subscription.* event by `apply_state`). Returns what was found, for logs and the CLI."""
    repository = SubscriptionRepository(session)
    await repository.lock(organization_id)
    local = await repository.get_for_organization(organization_id, for_update=True)
    result: dict[str, Any] = {"organization_id": str(organization_id), "differences": {}, "repaired": False}
    state = None
    if local is not None and local.stripe_subscription_id is not None and local.status != "canceled":
        remote = await retrieve(client, "subscriptions", local.stripe_subscription_id)
        # None: Stripe deleted it without a trace (test data removed), so it is over.
        state = replace(state_of(local), status="canceled") if remote is None else state_from_stripe(remote, settings)
    if (
        local is not None
        and local.stripe_customer_id is not None
        and local.status not in LIVE_STATUSES
        and (state is None or state.status not in LIVE_STATUSES)
    ):
        # A checkout completed (or a new subscription started) whose webhook never arrived.
        newer = await _newest_live(client, local.stripe_customer_id)
        if newer is not None:
            state = state_from_stripe(newer, settings)
    if local is None or state is None:
        result["skipped"] = "nothing at Stripe to compare"
        return result
    result["subscription_id"] = state.subscription_id
    found = differences(local, state)
    result["differences"] = {name: [_plain(a), _plain(b)] for name, (a, b) in found.items()}
    if found:
        logger.warning(
            "billing drift of organization %s (subscription %s) repaired: %s",
            organization_id,
            state.subscription_id,
            ", ".join(f"{name} {ours!r} -> {theirs!r}" for name, (ours, theirs) in found.items()),
        )
        await apply_state(session, redis, settings, organization_id, state)
        result["repaired"] = True
    return result


async def _newest_live(client: stripe.StripeClient, customer_id: str) -> dict[str, Any] | None:
    try:
        found = await client.v1.subscriptions.list_async(params={"customer": customer_id, "limit": 10})
    except stripe.StripeError as exc:
        raise BillingUnavailable() from exc
    for subscription in found.data:  # newest first
        if subscription.status in LIVE_STATUSES:
            result: dict[str, Any] = subscription.to_dict()
            return result
    return None


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def reconcile_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    organization_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Reconcile every subscription Stripe knows (or one organization's), each in its own transaction:
    one that fails (Stripe down for it) is reported and the others still run."""
    if client is None:
        return []
    async with unit_of_work(sessionmaker) as session:
        targets = await SubscriptionRepository(session).list_synced(organization_id)
    results = []
    for target in targets:
        try:
            async with unit_of_work(sessionmaker) as session:
                results.append(await reconcile_one(session, client, redis, settings, target))
        except BillingUnavailable:
            logger.warning("billing sync of organization %s: Stripe unavailable", target)
            results.append({"organization_id": str(target), "error": "BILLING_UNAVAILABLE", "repaired": False})
    return results
