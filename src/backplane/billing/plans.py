"""The plans, defined once: the rate limiter, the job queue and uploads all read this table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from backplane.billing.models import Subscription
from backplane.core.config import Settings, StripeSettings

MB = 1024 * 1024


class PlanName(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


@dataclass(frozen=True, slots=True)
class Plan:
    name: PlanName
    requests_per_minute: int
    burst: int
    concurrent_jobs: int
    jobs_per_month: int | None  # None: unlimited
    max_upload_bytes: int
    monthly_price_cents: int  # per seat


PLANS: dict[PlanName, Plan] = {
    PlanName.free: Plan(PlanName.free, 60, 10, 1, 100, 25 * MB, 0),
    PlanName.pro: Plan(PlanName.pro, 600, 100, 5, 10_000, 100 * MB, 4900),
    PlanName.enterprise: Plan(PlanName.enterprise, 6000, 1000, 25, None, 500 * MB, 19900),
}
DEFAULT_PLAN = PLANS[PlanName.free]
# Stripe statuses in which a subscription's plan is in force (past_due only for the grace period).
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})


def price_ids(settings: StripeSettings) -> dict[PlanName, str | None]:
    """Stripe price of each plan (from configuration); the free plan is not sold."""
    return {
        PlanName.free: None,
        PlanName.pro: settings.stripe_price_pro_monthly,
        PlanName.enterprise: settings.stripe_price_enterprise_monthly,
    }


def plan_for_price(price_id: str | None, settings: StripeSettings) -> Plan | None:
    for name, price in price_ids(settings).items():
        if price is not None and price == price_id:
            return PLANS[name]
    return None


def effective_plan(subscription: Subscription | None, settings: Settings, now: datetime) -> Plan:
    """The plan whose limits apply now: free without a live subscription, and after a past-due grace period."""
    if subscription is None or subscription.status not in LIVE_STATUSES:
        return DEFAULT_PLAN
    if subscription.status == "past_due":
        since = subscription.past_due_since or now
        if now - since > timedelta(seconds=settings.stripe.past_due_grace_seconds):
            return DEFAULT_PLAN
    return (
        PLANS.get(PlanName(subscription.plan), DEFAULT_PLAN)
        if subscription.plan in PlanName.__members__
        else DEFAULT_PLAN
    )
