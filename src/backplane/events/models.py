from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, TimestampMixin


class Event(TimestampMixin, Base):
    """A platform event (`subscription.updated`, `job.completed`, ...), written in the same
    transaction as the change it describes: an outbox for the outbound webhooks."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_organization_id_created_at", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # evt_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    livemode: Mapped[bool] = mapped_column(default=True)
