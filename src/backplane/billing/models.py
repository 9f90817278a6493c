from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, IdMixin, TimestampMixin, utcnow


class Subscription(IdMixin, TimestampMixin, Base):
    """One per organization once it starts a checkout. No row: the free plan."""

    __tablename__ = "subscriptions"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    plan: Mapped[str] = mapped_column(String(32), default="free")
    # Stripe's statuses: incomplete (checkout not finished), active, trialing, past_due, unpaid, canceled.
    status: Mapped[str] = mapped_column(String(32), default="incomplete")
    seats: Mapped[int] = mapped_column(default=1)
    livemode: Mapped[bool] = mapped_column(default=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    canceled_at: Mapped[datetime | None]
    past_due_since: Mapped[datetime | None]
    license_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("licenses.id", ondelete="SET NULL"))
    # When Stripe's view was last applied (local clock; never compared with Stripe's timestamps).
    synced_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


class StripeEvent(Base):
    """Every Stripe event id processed, inserted in the same transaction as its effects."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)


class Invoice(IdMixin, Base):
    """An invoice of the organization: a local copy of a Stripe invoice (kept from `invoice.payment_*`
    events and list calls, so invoices can be shown while Stripe is slow), or, in local billing mode,
    the record of a local purchase (`stripe_invoice_id` null)."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_organization_id_created_at", "organization_id", "created_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    number: Mapped[str | None] = mapped_column(String(64))
    # Stripe's statuses: draft, open, paid, uncollectible, void.
    status: Mapped[str] = mapped_column(String(32))
    amount_due: Mapped[int]
    amount_paid: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(255))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    invoice_pdf: Mapped[str | None] = mapped_column(Text)
    livemode: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # Stripe's `created` for a Stripe invoice
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


class ConnectedAccount(IdMixin, TimestampMixin, Base):
    """Stripe Connect: the organization's Standard connected account, as Stripe last showed it."""

    __tablename__ = "connected_accounts"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    requirements: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    livemode: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
