from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from backplane.billing.models import Subscription
from backplane.billing.plans import Plan, effective_plan
from backplane.core.config import Settings
from backplane.core.db import utcnow


class PlanLimits(BaseModel):
    requests_per_minute: int
    burst: int
    concurrent_jobs: int
    jobs_per_month: int | None = Field(description="null: unlimited")
    max_upload_bytes: int


class PlanRead(BaseModel):
    id: str = Field(examples=["pro"])
    name: str
    price_id: str | None = Field(description="The Stripe price to pass to checkout; null for the free plan.")
    monthly_price_cents: int = Field(description="Per seat.")
    currency: str = "usd"
    limits: PlanLimits


class PlanList(BaseModel):
    plans: list[PlanRead]


class SubscriptionRead(BaseModel):
    id: uuid.UUID | None = Field(description="null while the organization is on the free plan with no checkout yet.")
    plan: str
    status: str = Field(examples=["active"], description="incomplete, active, trialing, past_due, unpaid, canceled")
    seats: int
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    license_id: uuid.UUID | None
    livemode: bool
    limits: PlanLimits = Field(description="The limits in force now (free limits after a past-due grace period).")


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_id: str = Field(max_length=255, examples=["price_pro_monthly"])
    seats: int = Field(ge=1, le=10_000, examples=[5])
    success_url: AnyHttpUrl = Field(examples=["https://app.coditect.ai/success"])
    cancel_url: AnyHttpUrl = Field(examples=["https://app.coditect.ai/pricing"])


class CheckoutResponse(BaseModel):
    checkout_url: str
    session_id: str


class SeatsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: int = Field(ge=1, le=10_000, examples=[10])


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    immediately: bool = False


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool = False


def plan_limits(plan: Plan) -> PlanLimits:
    return PlanLimits(
        requests_per_minute=plan.requests_per_minute,
        burst=plan.burst,
        concurrent_jobs=plan.concurrent_jobs,
        jobs_per_month=plan.jobs_per_month,
        max_upload_bytes=plan.max_upload_bytes,
    )


def subscription_read(subscription: Subscription | None, settings: Settings) -> SubscriptionRead:
    """The subscription as the API shows it, and as its platform events carry it."""
    plan = effective_plan(subscription, settings, utcnow())
    if subscription is None:
        return SubscriptionRead(
            id=None,
            plan=str(plan.name),
            status="active",
            seats=1,
            current_period_end=None,
            cancel_at_period_end=False,
            canceled_at=None,
            license_id=None,
            livemode=True,
            limits=plan_limits(plan),
        )
    return SubscriptionRead(
        id=subscription.id,
        plan=subscription.plan,
        status=subscription.status,
        seats=subscription.seats,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        canceled_at=subscription.canceled_at,
        license_id=subscription.license_id,
        livemode=subscription.livemode,
        limits=plan_limits(plan),
    )
