"""Every event type: what it means and the JSON Schema of its `data`, from the models that build it.

`GET /v1/event-types` serves this, and `record_event` refuses a type that is not here; the tests check
each type's recorded `data` against the schema served, so a payload cannot drift from its documentation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backplane.api_keys.schemas import ApiKeyRead
from backplane.billing.schemas import SubscriptionRead
from backplane.files.schemas import FileRead
from backplane.jobs.schemas import JobRead
from backplane.licenses.schemas import LicenseRead


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobEventData(JobRead):
    model_config = ConfigDict(extra="forbid")

    output_url: str | None = Field(default=None, description="Where a completed job's output is (job.completed).")


class SubscriptionEventData(_Data):
    subscription: SubscriptionRead
    previous: dict[str, Any] | None = Field(description="The fields that changed, as they were; null when created.")


class PaymentEventData(_Data):
    invoice_id: str | None
    amount: int | None = Field(description="In the currency's smallest unit: paid (succeeded) or due (failed).")
    currency: str | None
    attempt_count: int | None
    subscription_id: str | None


class QuotaThresholdData(_Data):
    period: str = Field(examples=["2026-11"])
    threshold_percent: Literal[75, 90, 100]
    jobs_used: int
    jobs_quota: int
    plan: str
    resets_at: datetime


class ApiKeyEventData(ApiKeyRead):
    """The key as the API shows it: never its secret."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class LicenseEventData(_Data):
    """The license as the license API shows it (its key string is the customer's product key; never
    its license file)."""

    license: LicenseRead
    previous: dict[str, Any] | None = Field(description="The fields that changed, as they were; null when created.")


class LicenseExpiringData(_Data):
    license: LicenseRead
    days_before: Literal[7, 1] = Field(description="7: it expires within 7 days; 1: within a day.")


class LicenseExpiredData(_Data):
    license: LicenseRead


class MemberInvitedData(_Data):
    invitation_id: str
    organization_id: uuid.UUID
    email: str
    role: str
    expires_at: datetime


class MemberData(_Data):
    organization_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    role: str


class MemberJoinedData(MemberData):
    invitation_id: str
    joined_at: datetime


class MemberRemovedData(MemberData):
    left: bool = Field(description="true: the member left; false: an admin removed them.")
    removed_at: datetime


class FileEventData(FileRead):
    model_config = ConfigDict(extra="forbid")


class SeatAcquiredData(_Data):
    session_id: uuid.UUID
    license_id: uuid.UUID
    hardware_id: str
    client_version: str | None
    acquired_at: datetime


class SeatEndedData(_Data):
    session_id: uuid.UUID
    license_id: uuid.UUID
    hardware_id: str
    reason: Literal["released", "expired", "revoked"] = Field(
        description="released: by its client; revoked: by an admin; expired: no heartbeat in time."
    )
    acquired_at: datetime
    ended_at: datetime


CATALOG: dict[str, tuple[str, type[BaseModel]]] = {
    "job.completed": ("A job completed; its output is at `output_url`.", JobEventData),
    "job.failed": ("A job failed for good (its last attempt failed, or its input could not run).", JobEventData),
    "subscription.created": ("A subscription started (a checkout completed).", SubscriptionEventData),
    "subscription.updated": (
        "A subscription changed: plan, seats, status, period or cancellation.",
        SubscriptionEventData,
    ),
    "subscription.cancelled": ("A subscription ended.", SubscriptionEventData),
    "payment.succeeded": ("An invoice was paid.", PaymentEventData),
    "payment.failed": ("An invoice's payment failed; Stripe retries it.", PaymentEventData),
    "quota.threshold_reached": (
        "The month's jobs reached 75, 90 or 100 % of the plan's quota (once per month each).",
        QuotaThresholdData,
    ),
    "api_key.created": ("An API key was created (its secret is never in an event).", ApiKeyEventData),
    "api_key.revoked": ("An API key was revoked.", ApiKeyEventData),
    "license.created": (
        "A license was issued (bought, the free plan's, by staff, or a test license).",
        LicenseEventData,
    ),
    "license.updated": (
        "A license changed: tier, seats, activation, expiry, metadata or reactivation.",
        LicenseEventData,
    ),
    "license.suspended": ("A license was suspended: its seats cannot be acquired until reactivated.", LicenseEventData),
    "license.expiring": (
        "A license expires within 7 days, then within a day (once each, from a daily check).",
        LicenseExpiringData,
    ),
    "license.expired": ("A license reached its expiry date (from a daily check).", LicenseExpiredData),
    "member.invited": ("Someone was invited to the organization.", MemberInvitedData),
    "member.joined": ("An invited person accepted and joined the organization.", MemberJoinedData),
    "member.removed": ("A member left or was removed from the organization.", MemberRemovedData),
    "file.ready": ("A file's bytes were received and checked; jobs may use it.", FileEventData),
    "seat.acquired": ("A license seat was acquired (opt-in: `*` does not include seat events).", SeatAcquiredData),
    "seat.released": (
        "A seat was released by its client or revoked by an admin (opt-in; recorded within a minute).",
        SeatEndedData,
    ),
    "seat.expired": ("A seat's lease ran out without a heartbeat (opt-in; recorded within a minute).", SeatEndedData),
}


def schema_of(event_type: str) -> dict[str, Any]:
    return CATALOG[event_type][1].model_json_schema(mode="serialization")
