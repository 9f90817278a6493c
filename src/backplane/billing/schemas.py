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


class InvoiceRead(BaseModel):
    id: str = Field(description="Stripe's invoice id (`in_…`), or this service's id for a local-mode invoice.")
    number: str | None = Field(description="The invoice number shown to the customer; null for a draft.")
    status: str = Field(examples=["paid"], description="draft, open, paid, uncollectible, void")
    amount_due: int = Field(description="In the currency's smallest unit (cents).")
    amount_paid: int = Field(description="In the currency's smallest unit (cents).")
    currency: str = Field(examples=["usd"])
    description: str | None
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None = Field(
        description="Stripe's page of the invoice (pay it, download it); in local billing mode this service's "
        "printable page."
    )
    invoice_pdf: str | None = Field(description="Stripe's PDF of the invoice; null in local billing mode.")
    livemode: bool
    created_at: datetime


class LicensingInvoiceList(BaseModel):
    invoices: list[InvoiceRead]
    has_more: bool = Field(description="Whether another page follows this one.")
    next_cursor: str | None = Field(description="Pass as `cursor` to fetch the next page; null on the last page.")


class PortalSession(BaseModel):
    url: str = Field(
        description="Stripe's Billing Portal (payment methods, invoices, cancellation), valid for a short time; in "
        "local billing mode this service's own page."
    )
    return_url: str = Field(description="Where the portal sends the customer back to (STRIPE_PORTAL_RETURN_URL).")
    expires_at: datetime | None = Field(description="When a local-mode page stops answering; null for Stripe's.")


class ConnectAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_url: AnyHttpUrl = Field(
        description="Where Stripe sends the user when the link has expired (its origin must be in "
        "STRIPE_CONNECT_REDIRECT_ALLOWLIST).",
        examples=["https://your-app.com/stripe/refresh"],
    )
    return_url: AnyHttpUrl = Field(
        description="Where Stripe sends the user after onboarding (its origin must be in "
        "STRIPE_CONNECT_REDIRECT_ALLOWLIST).",
        examples=["https://your-app.com/stripe/return"],
    )


class ConnectRequirements(BaseModel):
    currently_due: list[str] | None = None
    eventually_due: list[str] | None = None
    past_due: list[str] | None = None
    pending_verification: list[str] | None = None
    disabled_reason: str | None = None


class ConnectAccountRead(BaseModel):
    id: str = Field(description="The Stripe account id (`acct_…`).")
    type: str = "standard"
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: ConnectRequirements
    livemode: bool
    updated_at: datetime


class ConnectOnboarding(BaseModel):
    account: ConnectAccountRead
    onboarding_url: str = Field(description="Stripe's `account_onboarding` link: send the user there.")
    expires_at: datetime


class DailyJobs(BaseModel):
    date: str = Field(description="A UTC day, YYYY-MM-DD.", examples=["2026-11-01"])
    jobs: int


class JobsUsage(BaseModel):
    used: int = Field(description="Jobs the quota counts this period: every job created, less those cancelled "
                      "before they ran.")  # fmt: skip
    quota: int | None = Field(description="The plan's monthly jobs; null: unlimited.")
    remaining: int | None
    percent_used: float | None
    by_agent: dict[str, int] = Field(examples=[{"maya": 12, "sam": 3}])
    by_day: list[DailyJobs] = Field(
        description="The same jobs by the UTC day they were created, every day of the period up to today "
        "(the whole month for a past period), days without jobs included as 0.",
        examples=[[{"date": "2026-11-01", "jobs": 4}, {"date": "2026-11-02", "jobs": 0}]],
    )
    thresholds_reached: list[int] = Field(
        description="Of 75, 90 and 100 (% of the quota): those reached this period, each announced once by a "
        "`quota.threshold_reached` event.",
        examples=[[75]],
    )


class ConcurrencyUsage(BaseModel):
    running: int | None = Field(description="Jobs running or handed to a worker now (null for a past period).")
    limit: int


class SeatsUsage(BaseModel):
    license_id: str
    tier: str
    seats: int
    live: int | None = Field(description="Seats leased now (null for a past period).")


class StorageUsage(BaseModel):
    files: int
    used_bytes: int
    max_file_bytes: int = Field(description="The plan's largest upload.")


class RateLimitUsage(BaseModel):
    requests_per_minute: int
    burst: int


class UsageRead(BaseModel):
    period: str = Field(examples=["2026-11"])
    period_start: datetime
    period_end: datetime
    plan: str
    jobs: JobsUsage
    concurrency: ConcurrencyUsage
    seats: list[SeatsUsage] = Field(description="The organization's licenses of this mode (up to 100).")
    storage: StorageUsage
    rate_limit: RateLimitUsage
    reported_to_stripe: dict[str, int] = Field(
        description="Meter events Stripe accepted this period, by meter (live jobs completed, "
        "`{agent}_job_completed` unless configured otherwise).",
        examples=[{"maya_job_completed": 12}],
    )


class SubscriptionWithUsage(SubscriptionRead):
    usage: UsageRead = Field(description="This month's usage, as `GET /v1/usage` shows it.")
