from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


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
