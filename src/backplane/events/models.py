from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, TimestampMixin


class Event(TimestampMixin, Base):
    """A platform event (`subscription.updated`, `job.completed`, ...), written in the same
    transaction as the change it describes: an outbox for the outbound webhooks.

    `dispatched_at` is set once the webhooks' dispatcher has turned the event into one delivery per
    subscribed endpoint; the partial index keeps finding the undispatched ones cheap.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_organization_id_created_at", "organization_id", "created_at"),
        Index("ix_events_undispatched", "created_at", postgresql_where=text("dispatched_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # evt_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    livemode: Mapped[bool] = mapped_column(default=True)
    dispatched_at: Mapped[datetime | None]
    # The trace-context carrier of the event's span, which its deliveries continue (core/tracing.py).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)
