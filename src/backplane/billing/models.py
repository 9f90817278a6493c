from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, func
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
    # Stripe's `created` of the newest event applied: an older event never moves the row backwards.
    last_event_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


class StripeEvent(Base):
    """Every Stripe event id processed, inserted in the same transaction as its effects."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
