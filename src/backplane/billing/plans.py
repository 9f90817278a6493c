"""The plans, defined once: the rate limiter, the job queue and uploads all read this table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from backplane.core.config import StripeSettings

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
