"""Subscriptions: checkout, seat changes, cancellation, and applying Stripe's view of them.

Every change, from an API call's response, a webhook, or a local checkout, goes through
`apply_state`, which keeps the subscription and its license in step and records the platform event.
In Stripe mode the state applied is always Stripe's current object (an API call's answer, or an
object fetched under the organization's billing lock: see sync.py), never an event's copy, so the
order in which events arrive does not matter and no timestamps are compared.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.billing.invoices import record_local_purchase
from backplane.billing.models import Subscription
from backplane.billing.plans import LIVE_STATUSES, PLANS, Plan, PlanName, effective_plan, plan_for_price
from backplane.billing.repository import SubscriptionRepository
from backplane.billing.schemas import subscription_read
from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.effects import effects
from backplane.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from backplane.events.service import record_event
from backplane.licenses import events as license_events
from backplane.licenses.repository import LicenseRepository
from backplane.licenses.schemas import LicenseCreate
from backplane.licenses.service import create_license

logger = logging.getLogger(__name__)

LOCAL_CHECKOUT_TTL_SECONDS = 86400
PLAN_CACHE_SECONDS = 60


class BillingUnavailable(AppError):
    status_code, code, title = 502, "BILLING_UNAVAILABLE", "Billing unavailable"
    default_message = "The payment provider could not be reached. Retry later."


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """Stripe's view of a subscription, in our terms."""

    plan: str
    status: str
    seats: int
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    price_id: str | None
    customer_id: str | None
    subscription_id: str | None
    livemode: bool


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def state_from_stripe(obj: Mapping[str, Any], settings: Settings) -> SubscriptionState:
    items = (obj.get("items") or {}).get("data") or [{}]
    item = items[0]
    price_id = (item.get("price") or {}).get("id")
    plan = plan_for_price(price_id, settings.stripe)
    metadata = obj.get("metadata") or {}
    return SubscriptionState(
        plan=str(plan.name if plan else metadata.get("plan") or PlanName.pro),
        status=str(obj.get("status") or "incomplete"),
        seats=int(item.get("quantity") or obj.get("quantity") or 1),
        current_period_end=_time(obj.get("current_period_end") or item.get("current_period_end")),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        canceled_at=_time(obj.get("canceled_at")),
        price_id=price_id,
        customer_id=obj.get("customer") if isinstance(obj.get("customer"), str) else None,
        subscription_id=obj.get("id"),
        livemode=bool(obj.get("livemode")),
    )


def _plan_cache_key(organization_id: uuid.UUID) -> str:
    return keys.plan_cache(organization_id)


def cached_plan(cached: str | None) -> Plan | None:
    """The plan `plan_of`'s cache entry names (read from `keys.plan_cache`); None when there is none."""
    return PLANS[PlanName(cached)] if cached is not None and cached in PlanName.__members__ else None


async def plan_of(session: AsyncSession, redis: Redis, settings: Settings, organization_id: uuid.UUID) -> Plan:
    """The organization's plan in force, cached in Redis for a minute (dropped on every change)."""
    plan = cached_plan(await redis.get(_plan_cache_key(organization_id)))
    if plan is not None:
        return plan
    subscription = await SubscriptionRepository(session).get_for_organization(organization_id)
    plan = effective_plan(subscription, settings, utcnow())
    await redis.set(_plan_cache_key(organization_id), plan.name, ex=PLAN_CACHE_SECONDS)
    return plan


async def has_paid_subscription(session: AsyncSession, organization_id: uuid.UUID) -> bool:
    """Whether a paid plan is live (or past due) for the organization: it must be cancelled before the
    organization can be deleted, or Stripe would go on charging for it."""
    subscription = await current(session, organization_id)
    return subscription is not None and subscription.plan != PlanName.free and subscription.status in LIVE_STATUSES


async def current(session: AsyncSession, organization_id: uuid.UUID) -> Subscription | None:
    return await SubscriptionRepository(session).get_for_organization(organization_id)


def _sold_plan(price_id: str, settings: Settings) -> Plan:
    plan = plan_for_price(price_id, settings.stripe)
    if plan is None or plan.name == PlanName.free:
        raise InvalidInput({"price_id": ["Unknown price. Use a price_id from GET /api/v1/subscriptions/plans/."]})
    return plan


async def _subscription_row(session: AsyncSession, principal: Principal) -> Subscription:
    repository = SubscriptionRepository(session)
    subscription = await repository.get_for_organization(principal.organization_id, for_update=True)
    if subscription is None:
        subscription = repository.add(
            Subscription(
                id=uuid.uuid4(),
                organization_id=principal.organization_id,
                plan=PlanName.free,
                status="incomplete",
                seats=1,
                livemode=principal.livemode,
            )
        )
        await session.flush()
    return subscription


async def create_checkout(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    principal: Principal,
    *,
    price_id: str,
    seats: int,
    success_url: str,
    cancel_url: str,
) -> tuple[str, str]:
    """(checkout_url, session_id)."""
    plan = _sold_plan(price_id, settings)
    organization = principal.require_organization()
    subscription = await _subscription_row(session, principal)
    if subscription.status in LIVE_STATUSES:
        raise Conflict("This organization already has a subscription; change its seats with update/ instead.")
    metadata = {"organization_id": str(organization.id), "plan": str(plan.name), "seats": str(seats)}
    if client is None:
        session_id = "cs_local_" + secrets.token_hex(16)
        pending = {
            **metadata,
            "price_id": price_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "started_by": principal.caller_id,
        }
        await redis.set(keys.local_checkout(session_id), json.dumps(pending), ex=LOCAL_CHECKOUT_TTL_SECONDS)
        base = settings.public_base_url.rstrip("/")
        return f"{base}/api/v1/subscriptions/local-checkout/{session_id}/", session_id
    try:
        if subscription.stripe_customer_id is None:
            customer = await client.v1.customers.create_async(
                params={"name": organization.name, "metadata": {"organization_id": str(organization.id)}},
                options={"idempotency_key": f"backplane-customer-{organization.id}"},
            )
            subscription.stripe_customer_id = customer.id
            await session.flush()
        checkout = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "customer": subscription.stripe_customer_id,
                "line_items": [{"price": price_id, "quantity": seats}],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": str(organization.id),
                "metadata": metadata,
                "subscription_data": {"metadata": metadata},
            }
        )
    except stripe.StripeError as exc:
        logger.warning("stripe checkout failed: %s", exc)
        raise BillingUnavailable() from exc
    return str(checkout.url), checkout.id


_LOCAL_CHECKOUT_GONE = "This checkout session does not exist, has expired or was already completed."


async def local_checkout(redis: Redis, session_id: str) -> dict[str, Any]:
    """A pending local-mode checkout (to show it), or 404."""
    raw = await redis.get(keys.local_checkout(session_id))
    if raw is None:
        raise NotFound(_LOCAL_CHECKOUT_GONE)
    pending: dict[str, Any] = json.loads(raw)
    return pending


async def complete_local_checkout(
    session: AsyncSession, redis: Redis, settings: Settings, principal: Principal, session_id: str
) -> str:
    """Local billing mode: the caller who started the checkout completes it. Returns the success URL.

    Knowing the URL is not enough: it is in browser histories and referrers, and it buys.
    """
    key = keys.local_checkout(session_id)
    pending = await local_checkout(redis, session_id)
    if pending["organization_id"] != str(principal.organization_id):
        raise NotFound(_LOCAL_CHECKOUT_GONE)  # another organization's checkout is not there for this caller
    if pending.get("started_by") != principal.caller_id:
        raise Forbidden("Only the account that started this checkout can complete it.")
    if await redis.getdel(key) is None:  # completed meanwhile by a concurrent request
        raise NotFound(_LOCAL_CHECKOUT_GONE)
    now = utcnow()
    state = SubscriptionState(
        plan=pending["plan"],
        status="active",
        seats=int(pending["seats"]),
        current_period_end=now + timedelta(days=30),
        cancel_at_period_end=False,
        canceled_at=None,
        price_id=pending["price_id"],
        customer_id=None,
        subscription_id=None,
        livemode=False,
    )
    subscription = await apply_state(session, redis, settings, uuid.UUID(pending["organization_id"]), state)
    await record_local_purchase(session, subscription)
    return str(pending["success_url"])


async def update_seats(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    principal: Principal,
    seats: int,
) -> Subscription:
    subscription = await _live_subscription(session, principal)
    if client is None or subscription.stripe_subscription_id is None:
        state = replace(state_of(subscription), seats=seats)
    else:
        try:
            remote = await client.v1.subscriptions.retrieve_async(subscription.stripe_subscription_id)
            item_id = remote["items"]["data"][0]["id"]
            updated = await client.v1.subscriptions.update_async(
                subscription.stripe_subscription_id,
                params={"items": [{"id": item_id, "quantity": seats}], "proration_behavior": "create_prorations"},
            )
        except stripe.StripeError as exc:
            raise BillingUnavailable() from exc
        state = state_from_stripe(updated.to_dict(), settings)
    return await apply_state(session, redis, settings, principal.organization_id, state)


async def cancel(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    redis: Redis,
    settings: Settings,
    principal: Principal,
    *,
    immediately: bool,
) -> Subscription:
    subscription = await _live_subscription(session, principal)
    now = utcnow()
    if client is None or subscription.stripe_subscription_id is None:
        state = state_of(subscription)
        state = (
            replace(state, status="canceled", canceled_at=now)
            if immediately
            else replace(state, cancel_at_period_end=True)
        )
    else:
        try:
            if immediately:
                remote = await client.v1.subscriptions.cancel_async(subscription.stripe_subscription_id)
            else:
                remote = await client.v1.subscriptions.update_async(
                    subscription.stripe_subscription_id, params={"cancel_at_period_end": True}
                )
        except stripe.StripeError as exc:
            raise BillingUnavailable() from exc
        state = state_from_stripe(remote.to_dict(), settings)
    return await apply_state(session, redis, settings, principal.organization_id, state)


async def _live_subscription(session: AsyncSession, principal: Principal) -> Subscription:
    repository = SubscriptionRepository(session)
    await repository.lock(principal.organization_id)  # a webhook about it waits for Stripe's answer here
    subscription = await repository.get_for_organization(principal.organization_id, for_update=True)
    if subscription is None or subscription.status not in LIVE_STATUSES:
        raise Conflict("This organization has no active subscription. Start one with checkout/.")
    return subscription


def state_of(subscription: Subscription) -> SubscriptionState:
    return SubscriptionState(
        plan=subscription.plan,
        status=subscription.status,
        seats=subscription.seats,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        canceled_at=subscription.canceled_at,
        price_id=subscription.stripe_price_id,
        customer_id=subscription.stripe_customer_id,
        subscription_id=subscription.stripe_subscription_id,
        livemode=subscription.livemode,
    )


def _snapshot(subscription: Subscription) -> dict[str, Any]:
    return {
        "plan": subscription.plan,
        "status": subscription.status,
        "seats": subscription.seats,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "current_period_end": subscription.current_period_end.isoformat() if subscription.current_period_end else None,
    }


async def apply_state(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    organization_id: uuid.UUID,
    state: SubscriptionState,
) -> Subscription:
    """Make the subscription (and its license) match `state`. In Stripe mode the caller holds the
    organization's billing lock and `state` is Stripe's current object."""
    repository = SubscriptionRepository(session)
    subscription = await repository.get_for_organization(organization_id, for_update=True)
    if subscription is None:
        subscription = repository.add(
            Subscription(
                id=uuid.uuid4(), organization_id=organization_id, plan=PlanName.free, status="incomplete", seats=1
            )
        )
    before = _snapshot(subscription) if subscription.status != "incomplete" else None

    subscription.plan = state.plan
    subscription.status = state.status
    subscription.seats = state.seats
    subscription.current_period_end = state.current_period_end
    subscription.cancel_at_period_end = state.cancel_at_period_end
    subscription.canceled_at = state.canceled_at
    subscription.stripe_price_id = state.price_id or subscription.stripe_price_id
    subscription.stripe_customer_id = state.customer_id or subscription.stripe_customer_id
    subscription.stripe_subscription_id = state.subscription_id or subscription.stripe_subscription_id
    subscription.livemode = state.livemode
    now = utcnow()
    if state.status == "past_due":
        subscription.past_due_since = subscription.past_due_since or now
    else:
        subscription.past_due_since = None
    subscription.synced_at = now
    await session.flush()
    await _sync_license(session, settings, subscription)

    after = _snapshot(subscription)
    data = {"subscription": subscription_read(subscription, settings).model_dump(mode="json"), "previous": before}
    if before is None and subscription.status in LIVE_STATUSES:
        record_event(session, organization_id, "subscription.created", data, livemode=subscription.livemode)
    elif subscription.status == "canceled" and (before or {}).get("status") != "canceled":
        record_event(session, organization_id, "subscription.cancelled", data, livemode=subscription.livemode)
    elif before is not None and before != after:
        record_event(session, organization_id, "subscription.updated", data, livemode=subscription.livemode)
    _forget_plan_after_commit(session, redis, organization_id)
    return subscription


async def _sync_license(session: AsyncSession, settings: Settings, subscription: Subscription) -> None:
    """The subscription's license: created with its first live state, then kept at its tier and seats;
    deactivated when the subscription ends. It is a live license in our sense (billing is for live-mode
    callers only), whatever Stripe's own mode: a purchase made with Stripe's test keys, or in local
    billing mode, is still the organization's purchase in this deployment."""
    licenses = LicenseRepository(session, subscription.organization_id, True)
    license_ = await licenses.get(subscription.license_id, for_update=True) if subscription.license_id else None
    live = subscription.status in LIVE_STATUSES
    if license_ is None:
        if not live or subscription.plan == PlanName.free:
            return
        license_ = await create_license(
            session,
            subscription.organization_id,
            LicenseCreate(tier=subscription.plan, seats=subscription.seats),
            prefix=settings.license_key_prefix,
            livemode=True,
        )
        subscription.license_id = license_.id
    else:
        before = license_events.snapshot(license_)
        license_.tier = subscription.plan
        license_.seats = subscription.seats
        license_.is_active = live
        await session.flush()
        license_events.announce_change(session, license_, before)
    await session.flush()


def _forget_plan_after_commit(session: AsyncSession, redis: Redis, organization_id: uuid.UUID) -> None:
    async def forget() -> None:
        await redis.delete(_plan_cache_key(organization_id))

    effects(session).call(forget)
